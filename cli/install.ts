// What `ferryctl cluster add` prints: the one command that installs the agent chart with its
// enrollment token. The value names (cluster.name, broker.address, nats.url, bootstrapToken) are
// the ferry-agent chart's; this is the only place ferryctl spells them.
export const AGENT_CHART = "charts/ferry-agent";
export const AGENT_RELEASE = "ferry-agent";
export const AGENT_NAMESPACE = "ferry-system";

export interface AgentInstall {
  cluster: string;
  /** The broker's gRPC address agents enroll at (host:port). */
  brokerAddress: string;
  /** NATS URL agents connect to, e.g. tls://nats.example.com:4222. */
  natsUrl: string;
  token: string;
}

/** Quotes a shell word only when it needs it (POSIX single quotes). */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `helm install ferry-agent charts/ferry-agent -n ferry-system --create-namespace --set …`. */
export function agentInstallCommand(a: AgentInstall): string {
  // helm splits --set values at commas (lists); escape them so a value stays one string.
  const set = (key: string, value: string) => `--set ${shellWord(`${key}=${value.replace(/,/g, "\\,")}`)}`;
  return [
    `helm install ${AGENT_RELEASE} ${AGENT_CHART} -n ${AGENT_NAMESPACE} --create-namespace`,
    set("cluster.name", a.cluster),
    set("broker.address", a.brokerAddress),
    set("nats.url", a.natsUrl),
    set("bootstrapToken", a.token),
  ].join(" ");
}
