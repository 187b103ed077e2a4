// What `ferryctl cluster add` prints: the one command that installs the ferry-agent chart with its
// enrollment token. The value names are the chart's (charts/ferry-agent/values.yaml: cluster.name,
// broker.address, broker.caFingerprint, enrollment.token, nats.urls); this is the only place
// ferryctl spells them, and install.test.ts renders the printed command with `helm template`.
export const AGENT_CHART = "charts/ferry-agent";
export const AGENT_RELEASE = "ferry-agent";
export const AGENT_NAMESPACE = "ferry-system";

export interface AgentInstall {
  cluster: string;
  /** The broker's gRPC address agents enroll at (host:port). */
  brokerAddress: string;
  /** SHA-256 of the ferry CA (AA:BB:…), pinned by the agent at enrollment. */
  caFingerprint: string;
  token: string;
  /** NATS URLs for the agent; empty: the ones the broker hands out at enrollment. */
  natsUrls?: readonly string[];
}

/** Quotes a shell word only when it needs it (POSIX single quotes). */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `helm install ferry-agent charts/ferry-agent -n ferry-system --create-namespace --set …`. */
export function agentInstallCommand(a: AgentInstall): string {
  // helm splits --set values at commas (lists); escape them so a value stays one string.
  const set = (key: string, value: string) => `--set ${shellWord(`${key}=${value.replace(/,/g, "\\,")}`)}`;
  const parts = [
    `helm install ${AGENT_RELEASE} ${AGENT_CHART} -n ${AGENT_NAMESPACE} --create-namespace`,
    set("cluster.name", a.cluster),
    set("broker.address", a.brokerAddress),
    set("broker.caFingerprint", a.caFingerprint),
    set("enrollment.token", a.token),
  ];
  // A list in helm's --set syntax: {a,b}.
  if (a.natsUrls?.length) parts.push(`--set ${shellWord(`nats.urls={${a.natsUrls.join(",")}}`)}`);
  return parts.join(" ");
}
