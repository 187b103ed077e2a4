// The command tree (commander) and the thin shell around the pure parts: read flags and files,
// call the broker, print what format.ts / watch.ts produce.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { status } from "@grpc/grpc-js";
import { MigrationState, type GetMigrationRequest } from "../proto/gen/ferry/v1/migrations.js";
import { Plan } from "../proto/gen/ferry/v1/plans.js";
import { Severity } from "../proto/gen/ferry/v1/types.js";
import { parsePlan, type MigrationPlan } from "../proto/plan.js";
import { BrokerCallError, BrokerConnection } from "./broker.js";
import { CONFIG_ENV, NatsUrl, loadCredentials, parseConfig, resolveConfigPath, type Credentials, type FerryctlConfig } from "./config.js";
import { CliError, usageError } from "./errors.js";
import {
  clusterStateWord,
  clusterTable,
  list,
  migrationStateWord,
  migrationTable,
  parseOutputFormat,
  planPhaseWord,
  planTable,
  structured,
  toJson,
  validationLines,
  type OutputFormat,
} from "./format.js";
import { agentInstallCommand } from "./install.js";
import { evacuationPlan, migrationPlan, parseVmArg } from "./plans.js";
import { watchPlan } from "./watch-shell.js";

export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
  now: () => Date;
  readStdin: () => string;
}

interface GlobalOptions {
  config?: string;
  broker?: string[];
  tlsServerName?: string;
  ca?: string;
  cert?: string;
  key?: string;
}

/** "30m", "1h", "90s" → seconds. */
export function parseTtl(v: string): number {
  const m = /^(\d+)(s|m|h)$/.exec(v);
  if (!m) throw new InvalidArgumentError('use a number with s, m or h, e.g. "1h" or "30m"');
  return Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as "s" | "m" | "h"];
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("must be a positive integer");
  return n;
}

function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), ...v.split(",").filter(Boolean)];
}

/** The API's largest page. */
const PAGE = 1000;

/** Every item of a paged List RPC: `page(token)` returns the items and next_page_token. */
export async function allPages<T>(page: (token: string) => Promise<[T[], string]>): Promise<T[]> {
  const all: T[] = [];
  let token = "";
  do {
    const [items, next] = await page(token);
    all.push(...items);
    token = next;
  } while (token);
  return all;
}

/** "uid" or "<plan>/<ns>/<vm>": a name has slashes, a uid has none. */
export function migrationRef(arg: string): GetMigrationRequest["migration"] {
  if (!arg.includes("/")) return { $case: "uid", value: arg };
  if (arg.split("/").length !== 3) throw usageError(`"${arg}" is neither a migration uid nor PLAN/NAMESPACE/VM`);
  return { $case: "name", value: arg };
}

/** kubectl's --dry-run: bare or =server asks the broker; =client prints the plan document ferryctl would send, offline. */
const dryRunOption = (what: string) =>
  new Option("--dry-run [strategy]", `${what}; --dry-run=client prints the plan document without contacting the broker`).argParser((v): DryRun => {
    if (v !== "client" && v !== "server") throw new InvalidArgumentError('use --dry-run, --dry-run=server or --dry-run=client');
    return v;
  });
type DryRun = true | "client" | "server";

const VERSION = (JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8")) as { version: string }).version;

const outputOption = () => new Option("-o, --output <format>", "output format: json, yaml or wide").argParser((v) => v);

export function buildProgram(io: Io): { program: Command; close: () => void } {
  const write = (s: string) => io.stdout.write(s);
  let connection: BrokerConnection | undefined;
  let configPath = "";

  const program = new Command("ferryctl")
    .description("ferry's admin command line: clusters, migration plans, evacuations and single-VM moves over the broker's gRPC API")
    .version(VERSION, "--version", "print ferryctl's version")
    .option("--config <file>", "ferryctl config (brokers, CA, admin certificate); default $FERRY_CONFIG, ./ferryctl.yaml, ./.ferry/ferryctl.yaml")
    .option("--broker <host:port>", "broker address (repeat or comma-separate); overrides brokers in the config", collect)
    .option("--tls-server-name <name>", "name to verify in the broker certificate; overrides tlsServerName")
    .option("--ca <file>", "ferry CA certificate; overrides caFile")
    .option("--cert <file>", "admin client certificate; overrides certFile")
    .option("--key <file>", "admin client key; overrides keyFile")
    .option("--debug", "print the stack trace of an unexpected error (also FERRY_DEBUG=1)")
    .showSuggestionAfterError(true)
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .exitOverride()
    .addHelpText(
      "after",
      `
Exit codes: 0 ok, 1 error, 2 usage error.
Examples:
  ferryctl cluster add east
  ferryctl plan apply -f plan.yaml --dry-run
  ferryctl plan watch move-db
  ferryctl evacuate east --to west,north
  ferryctl migrate db/pg-0 --from east --to west`,
    );

  let config: FerryctlConfig | undefined;
  /** Resolves the config (flags over file) and opens the connection on first use. */
  const broker = (): BrokerConnection => {
    if (connection) return connection;
    const g = program.opts<GlobalOptions>();
    const flags: Partial<FerryctlConfig> = {
      ...(g.broker?.length ? { brokers: g.broker } : {}),
      ...(g.tlsServerName ? { tlsServerName: g.tlsServerName } : {}),
      ...(g.ca ? { caFile: resolve(io.cwd, g.ca), caData: undefined } : {}),
      ...(g.cert ? { certFile: resolve(io.cwd, g.cert), certData: undefined } : {}),
      ...(g.key ? { keyFile: resolve(io.cwd, g.key), keyData: undefined } : {}),
    };
    const flagsOnly = g.broker?.length && g.ca && g.cert && g.key && !g.config && !io.env[CONFIG_ENV];
    if (flagsOnly) {
      configPath = "--broker/--ca/--cert/--key";
      config = parseConfig(JSON.stringify(flags), configPath);
    } else {
      const partial = ["broker", "ca", "cert", "key"].filter((f) => !(f === "broker" ? g.broker?.length : g[f as "ca" | "cert" | "key"]));
      let found: { path: string; from: string };
      try {
        found = resolveConfigPath(g.config, io.env, io.cwd, existsSync);
      } catch (e) {
        if (partial.length < 4 && e instanceof CliError) throw new CliError(`${e.message}; without a file, also pass ${partial.map((f) => `--${f}`).join(", ")}`);
        throw e;
      }
      configPath = found.path;
      let text: string;
      try {
        text = readFileSync(found.path, "utf8");
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : String(e);
        throw new CliError(`config ${found.path} (from ${found.from}): ${why}; pass --config with an existing ferryctl.yaml (\`npm run ferry -- up\` writes one)`);
      }
      const fromFile = parseConfig(text, found.path);
      // Flags win; the result is checked again so a bad --broker is named like a bad file field.
      config = Object.keys(flags).length ? parseConfig(JSON.stringify({ ...fromFile, ...flags }), `${found.path} with flags`) : fromFile;
    }
    const creds = (credentials = loadCredentials(config, flagsOnly ? resolve(io.cwd, "flags") : configPath, (p) => readFileSync(p, "utf8"), io.now()));
    connection = new BrokerConnection(config, creds, configPath);
    return connection;
  };
  let credentials: Credentials | undefined;
  const natsUrlFromConfig = (): string | undefined => {
    broker();
    return config?.natsUrl;
  };

  const output = (o: { output?: string }): OutputFormat => parseOutputFormat(o.output);

  // ---- cluster ----
  const cluster = program.command("cluster").description("enroll, inspect, cordon and remove clusters");

  cluster
    .command("add")
    .description("create an enrollment token for a new cluster and print the agent chart's install command")
    .argument("<name>", "cluster name (DNS-1123 label)")
    .option("--ttl <duration>", "how long the token is valid (e.g. 30m, 1h; broker default 1h, max 24h)", parseTtl)
    .option("--nats-url <url>", "NATS URL for the agent; default natsUrl in the config, else the URLs the broker hands out")
    .option("--ca-out <file>", "write the ferry CA to this file for the command's --set-file broker.caPem (default: the config's caFile)")
    .addOption(outputOption())
    .addHelpText("after", "\nExample:\n  ferryctl cluster add east --ttl 2h")
    .action(async (name: string, o: { ttl?: number; natsUrl?: string; caOut?: string; output?: string }) => {
      const format = output(o);
      if (o.natsUrl !== undefined && !NatsUrl.safeParse(o.natsUrl).success) throw usageError(`--nats-url ${o.natsUrl}: use tls://HOST:PORT`);
      const natsUrl = o.natsUrl ?? natsUrlFromConfig();
      const res = await broker().call("clusters", "createEnrollmentToken", { clusterName: name, ttl: o.ttl !== undefined ? { seconds: o.ttl, nanos: 0 } : undefined });
      const brokerAddress = res.brokerAddress || broker().address;
      // The agent verifies the broker with the ferry CA at enrollment: name a file that holds it.
      let caFile: string | undefined;
      if (o.caOut) {
        caFile = resolve(io.cwd, o.caOut);
        writeFileSync(caFile, res.caPem);
      } else if (credentials?.caPath && credentials.caPem.trim() === res.caPem.trim()) {
        caFile = credentials.caPath;
      }
      const command = agentInstallCommand({ cluster: name, brokerAddress, token: res.token, caFile: caFile ?? "ferry-ca.crt", ...(natsUrl ? { natsUrl } : {}) });
      if (format === "json" || format === "yaml") {
        write(structured({ cluster: name, token: res.token, expireTime: res.expireTime?.toISOString(), caFingerprintSha256: res.caFingerprintSha256, caPem: res.caPem, brokerAddress, natsUrl: natsUrl ?? "", installCommand: command }, format));
        return;
      }
      write(
        [
          `cluster/${name} created (pending enrollment)`,
          `token (single use, expires ${res.expireTime?.toISOString() ?? "?"}):`,
          `  ${res.token}`,
          `ferry CA SHA-256 fingerprint: ${res.caFingerprintSha256}`,
          ...(caFile ? [] : [``, `Save the ferry CA as ferry-ca.crt (or pass --ca-out FILE):`, res.caPem.trimEnd()]),
          ``,
          `Install the agent in cluster ${name} (kubectl context of that cluster):`,
          `  ${command}`,
          ``,
        ].join("\n"),
      );
    });

  cluster
    .command("list")
    .description("list clusters")
    .addOption(outputOption())
    .addHelpText("after", "\nExamples:\n  ferryctl cluster list\n  ferryctl cluster list -o wide")
    .action(async (o: { output?: string }) => {
      const format = output(o);
      const clusters = await allPages(async (pageToken) => {
        const res = await broker().call("clusters", "listClusters", { pageSize: PAGE, pageToken });
        return [res.clusters, res.nextPageToken];
      });
      if (format === "json" || format === "yaml") return void write(structured(list(clusters.map(toJson.cluster)), format));
      if (clusters.length === 0) return void io.stderr.write("No clusters. Add one with: ferryctl cluster add NAME\n");
      write(clusterTable(clusters, format === "wide", io.now()));
    });

  cluster
    .command("get")
    .description("show one cluster")
    .argument("<name>")
    .addOption(outputOption())
    .addHelpText("after", "\nExample:\n  ferryctl cluster get east -o yaml")
    .action(async (name: string, o: { output?: string }) => {
      const format = output(o);
      const res = await broker().call("clusters", "getCluster", { name });
      const c = res.cluster!;
      if (format === "json" || format === "yaml") return void write(structured(toJson.cluster(c), format));
      write(clusterTable([c], format === "wide", io.now()));
    });

  cluster
    .command("cordon")
    .description("start no new migrations to or from the cluster (running ones finish), except an evacuation of it")
    .argument("<name>")
    .option("--reason <text>", "why; shown in cluster list and in why-waiting messages", "")
    .addHelpText("after", '\nExamples:\n  ferryctl cluster cordon east --reason "kernel upgrade, OPS-123"\n  ferryctl cluster cordon east --reason decommission && ferryctl evacuate east -w   # drain it')
    .action(async (name: string, o: { reason: string }) => {
      const res = await broker().call("clusters", "cordonCluster", { name, reason: o.reason });
      write(`cluster/${res.cluster?.name ?? name} cordoned${o.reason ? ` (${o.reason})` : ""}\n`);
    });

  cluster
    .command("uncordon")
    .description("allow migrations to and from the cluster again")
    .argument("<name>")
    .addHelpText("after", "\nExample:\n  ferryctl cluster uncordon east")
    .action(async (name: string) => {
      const res = await broker().call("clusters", "uncordonCluster", { name });
      write(`cluster/${res.cluster?.name ?? name} uncordoned\n`);
    });

  cluster
    .command("remove")
    .description("revoke the cluster's agent and mark it removed (refused while migrations involve it)")
    .argument("<name>")
    .addHelpText("after", "\nExample:\n  ferryctl cluster remove east")
    .action(async (name: string) => {
      const res = await broker().call("clusters", "removeCluster", { name }).catch((e: unknown) => {
        if (e instanceof BrokerCallError && e.rpc.code === status.FAILED_PRECONDITION) {
          throw new CliError(`${e.cli.message}; cordon the cluster (ferryctl cluster cordon ${name}) and wait for or cancel these migrations`, 1, e.cli.lines);
        }
        throw e;
      });
      write(`cluster/${res.cluster?.name ?? name} removed (${clusterStateWord(res.cluster!.state)}); its agent certificate and NATS user are revoked\n`);
    });

  // ---- plan ----
  const plan = program.command("plan").description("submit, inspect, watch, cancel and delete migration plans");

  /** CreatePlan, idempotent like kubectl apply: an existing plan with the same document is "unchanged". */
  const submit = async (doc: { text: string } | { object: MigrationPlan }, local: MigrationPlan, opts: { dryRun?: DryRun; output?: string; watch?: boolean }) => {
    const format = output(opts);
    if (opts.dryRun === "client") {
      // The document as ferryctl would send it (defaults filled in): YAML unless -o json.
      write(format === "json" ? structured(local, "json") : structured(local, "yaml"));
      return;
    }
    const o = { ...opts, dryRun: opts.dryRun !== undefined };
    const document: { $case: "text"; value: string } | { $case: "object"; value: Record<string, unknown> } = "text" in doc ? { $case: "text", value: doc.text } : { $case: "object", value: doc.object };
    const name = local.metadata.name;
    let created: Plan;
    try {
      created = (await broker().call("plans", "createPlan", { document, dryRun: !!o.dryRun })).plan!;
    } catch (e) {
      if (!(e instanceof BrokerCallError) || e.rpc.code !== status.ALREADY_EXISTS) throw e;
      const existing = (await broker().call("plans", "getPlan", { name })).plan!;
      if (!sameDocument(existing.document, local)) {
        throw new CliError(`plan ${name} already exists with a different spec (${planPhaseWord(existing.phase)}); plans are immutable: delete it first (ferryctl plan delete ${name}, after cancel if it runs) or use another name`);
      }
      if (format === "json" || format === "yaml") write(structured(toJson.plan(existing), format));
      else write(`plan/${name} unchanged (${planPhaseWord(existing.phase)})\n`);
      if (o.watch) return watch(name);
      return;
    }
    if (format === "json" || format === "yaml") {
      write(structured(toJson.plan(created), format));
    } else if (o.dryRun) {
      const errors = created.validation.filter((v) => v.severity === Severity.ERROR).length;
      write(`plan/${name} validated (dry run, nothing created): ${created.migrations.length} migration(s), ${errors} error(s), ${created.validation.length - errors} warning(s)\n`);
      if (created.migrations.length) write(migrationTable(created.migrations, format === "wide", io.now()));
      for (const line of validationLines(created)) write(`${line}\n`);
      if (errors > 0) throw new CliError(`plan/${name} would be refused: ${errors} validation error(s) above`);
    } else {
      write(`plan/${name} created: ${created.counters?.total ?? created.migrations.length} migration(s)\n`);
      for (const line of validationLines(created)) write(`${line}\n`);
    }
    if (o.watch && !o.dryRun) return watch(name);
  };

  const watch = async (name: string) => {
    const code = await watchPlan(broker(), name, io);
    if (code !== 0) throw new CliError(`plan/${name} finished without every VM succeeding`, code);
  };

  plan
    .command("apply")
    .description("create a plan from a MigrationPlan document (YAML or JSON); unchanged if the same plan exists")
    .requiredOption("-f, --filename <file>", "the plan document; - for stdin")
    .addOption(dryRunOption("validate against the clusters and show the migrations that would run; create nothing"))
    .option("-w, --watch", "watch the plan after creating it (like plan watch)")
    .addOption(outputOption())
    .addHelpText("after", "\nExamples:\n  ferryctl plan apply -f plan.yaml --dry-run\n  ferryctl plan apply -f plan.yaml --watch")
    .action(async (o: { filename: string; dryRun?: DryRun; output?: string; watch?: boolean }) => {
      output(o);
      let text: string;
      const file = o.filename;
      try {
        text = file === "-" ? io.readStdin() : readFileSync(file.startsWith("/") ? file : `${io.cwd}/${file}`, "utf8");
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new CliError(`${file}: ${code === "ENOENT" ? "no such file" : String(e)}; pass the plan file with -f`);
      }
      const parsed = parsePlan(text);
      if (!parsed.ok) {
        const lines = parsed.issues.map((i) => `${i.path}${i.line ? ` (line ${i.line})` : ""}: ${i.message}`);
        throw new CliError(`${file} is not a valid MigrationPlan (${lines.length} error${lines.length > 1 ? "s" : ""}); fix the fields below`, 1, lines);
      }
      await submit({ text }, parsed.value, o);
    });

  const getPlan = async (name: string) => (await broker().call("plans", "getPlan", { name })).plan!;

  plan
    .command("get")
    .description("show a plan and its migrations")
    .argument("<name>")
    .addOption(outputOption())
    .addHelpText("after", "\nExamples:\n  ferryctl plan get move-db\n  ferryctl plan get move-db -o yaml")
    .action(async (name: string, o: { output?: string }) => {
      const format = output(o);
      const p = await getPlan(name);
      if (format === "json" || format === "yaml") return void write(structured(toJson.plan(p), format));
      write(planTable([p], format === "wide", io.now()));
      if (p.migrations.length) write("\n" + migrationTable(p.migrations, format === "wide", io.now()));
      for (const line of validationLines(p)) write(`${line}\n`);
    });

  plan
    .command("list")
    .description("list plans, newest first")
    .addOption(outputOption())
    .addHelpText("after", "\nExample:\n  ferryctl plan list -o wide")
    .action(async (o: { output?: string }) => {
      const format = output(o);
      const plans = await allPages(async (pageToken) => {
        const res = await broker().call("plans", "listPlans", { pageSize: PAGE, pageToken });
        return [res.plans, res.nextPageToken];
      });
      if (format === "json" || format === "yaml") return void write(structured(list(plans.map(toJson.plan)), format));
      if (plans.length === 0) return void io.stderr.write("No plans. Create one with: ferryctl plan apply -f plan.yaml\n");
      write(planTable(plans, format === "wide", io.now()));
    });

  plan
    .command("watch")
    .description("follow a plan live: per-VM progress (phase, bytes, rate, ETA, why queued); exits 0 when every VM succeeded, 1 otherwise")
    .argument("<name>")
    .addHelpText("after", "\nProgress bars on a terminal, one line per change otherwise.\nExample:\n  ferryctl plan watch move-db")
    .action(async (name: string) => watch(name));

  plan
    .command("cancel")
    .description("cancel every unfinished migration of the plan (finished ones stay)")
    .argument("<name>")
    .addHelpText("after", "\nExample:\n  ferryctl plan cancel move-db")
    .action(async (name: string) => {
      const res = await broker().call("plans", "cancelPlan", { name });
      write(`plan/${name} cancelled (phase ${planPhaseWord(res.plan!.phase)})\n`);
    });

  plan
    .command("delete")
    .description("delete a finished plan and its records")
    .argument("<name>")
    .addHelpText("after", "\nExample:\n  ferryctl plan delete move-db")
    .action(async (name: string) => {
      await broker()
        .call("plans", "deletePlan", { name })
        .catch((e: unknown) => {
          if (e instanceof BrokerCallError && e.rpc.code === status.FAILED_PRECONDITION) {
            throw new CliError(`${e.cli.message}; cancel it first (ferryctl plan cancel ${name}) and wait until it is Cancelled`, 1, e.cli.lines);
          }
          throw e;
        });
      write(`plan/${name} deleted\n`);
    });

  // ---- migration ----
  const migration = program.command("migration").description("inspect, cancel and retry single migrations (one VM of a plan)");

  migration
    .command("get")
    .description("show a migration by uid or PLAN/NAMESPACE/VM")
    .argument("<migration>", "uid or PLAN/NAMESPACE/VM")
    .addOption(outputOption())
    .addHelpText("after", "\nExample:\n  ferryctl migration get move-db/db/pg-0 -o yaml")
    .action(async (ref: string, o: { output?: string }) => {
      const format = output(o);
      const m = (await broker().call("migrations", "getMigration", { migration: migrationRef(ref) })).migration!;
      if (format === "json" || format === "yaml") return void write(structured(toJson.migration(m), format));
      write(migrationTable([m], format === "wide", io.now()));
    });

  migration
    .command("list")
    .description("list the migrations of a plan")
    .argument("[plan]", "the plan (or --plan)")
    .option("--plan <plan>", "the plan")
    .addOption(new Option("--state <state...>", "only these states (e.g. Failed Queued)"))
    .addOption(outputOption())
    .addHelpText("after", "\nExamples:\n  ferryctl migration list move-db --state Failed\n  ferryctl migration list --plan move-db -o wide")
    .action(async (arg: string | undefined, o: { plan?: string; output?: string; state?: string[] }) => {
      const format = output(o);
      if (arg && o.plan && arg !== o.plan) throw usageError(`two plans given ("${arg}" and --plan "${o.plan}"); give one`);
      const planName = arg ?? o.plan;
      if (!planName) throw usageError("name the plan: ferryctl migration list PLAN (or --plan PLAN)");
      const states = (o.state ?? []).map((s) => {
        const found = Object.values(MigrationState).find((v) => typeof v === "number" && migrationStateWord(v).toLowerCase() === s.toLowerCase());
        if (found === undefined || typeof found !== "number") throw usageError(`unknown state "${s}"; use e.g. Queued, Migrating, Succeeded, Failed, Cancelled`);
        return found;
      });
      const all = await allPages(async (pageToken) => {
        const res = await broker().call("migrations", "listMigrations", { plan: planName, states, pageSize: PAGE, pageToken });
        return [res.migrations, res.nextPageToken];
      });
      if (format === "json" || format === "yaml") return void write(structured(list(all.map(toJson.migration)), format));
      if (all.length === 0) return void io.stderr.write(`No migrations${states.length ? " in those states" : ""} in plan ${planName}.\n`);
      write(migrationTable(all, format === "wide", io.now()));
    });

  migration
    .command("cancel")
    .description("cancel one migration; ferry cleans up the target and the source keeps running")
    .argument("<migration>", "uid or PLAN/NAMESPACE/VM")
    .addHelpText("after", "\nExample:\n  ferryctl migration cancel move-db/db/pg-0")
    .action(async (ref: string) => {
      const m = (await broker().call("migrations", "cancelMigration", { migration: migrationRef(ref) })).migration!;
      write(`migration/${m.name} cancelled (state ${migrationStateWord(m.state)})\n`);
    });

  migration
    .command("retry")
    .description("start a new attempt of a failed or cancelled migration")
    .argument("<migration>", "uid or PLAN/NAMESPACE/VM")
    .addHelpText("after", "\nExample:\n  ferryctl migration retry move-db/db/pg-0")
    .action(async (ref: string) => {
      const m = (await broker().call("migrations", "retryMigration", { migration: migrationRef(ref) })).migration!;
      write(`migration/${m.name} retried (state ${migrationStateWord(m.state)}; a new attempt follows attempt ${m.attempt})\n`);
    });

  // ---- evacuate / migrate ----
  program
    .command("evacuate")
    .description("move every VM off a cluster; the broker places each VM (capacity, storage, networks, health, cordons)")
    .argument("<cluster>")
    .option("--to <clusters>", "only these target clusters (comma-separated); default every available, uncordoned one")
    .option("--name <plan>", "plan name (default evacuate-<cluster>)")
    .option("--max-in-flight <n>", "migrations of this plan at once (default 5)", positiveInt)
    .option("--max-attempts <n>", "attempts per VM before it is Failed (default 3)", positiveInt)
    .addOption(dryRunOption("show where each VM would go and what blocks; create nothing"))
    .option("-w, --watch", "watch the plan after creating it")
    .addOption(outputOption())
    .addHelpText("after", "\nExamples:\n  ferryctl evacuate east --dry-run\n  ferryctl evacuate east --to west,north --watch")
    .action(async (clusterName: string, o: { to?: string; name?: string; maxInFlight?: number; maxAttempts?: number; dryRun?: DryRun; watch?: boolean; output?: string }) => {
      output(o);
      const doc = evacuationPlan({
        cluster: clusterName,
        ...(o.to !== undefined ? { to: o.to } : {}),
        ...(o.name ? { name: o.name } : {}),
        ...(o.maxInFlight ? { maxInFlight: o.maxInFlight } : {}),
        ...(o.maxAttempts ? { maxAttempts: o.maxAttempts } : {}),
      });
      await submit({ object: doc }, doc, o);
    });

  program
    .command("migrate")
    .description("move one VM (a one-VM plan); --from A --to A with --storage-class moves only its storage")
    .argument("<vm>", "NAMESPACE/VM")
    .requiredOption("--from <cluster>", "source cluster")
    .requiredOption("--to <cluster>", "target cluster")
    .option("--storage-class <class>", "put every volume on this storage class of the target")
    .option("--target-namespace <ns>", "target namespace (default the VM's own)")
    .option("--name <plan>", "plan name (default migrate-<ns>-<vm>)")
    .option("--max-attempts <n>", "attempts before the migration is Failed (default 3)", positiveInt)
    .addOption(dryRunOption("validate and show the migration; create nothing"))
    .option("-w, --watch", "watch the plan after creating it")
    .addOption(outputOption())
    .addHelpText("after", "\nExamples:\n  ferryctl migrate db/pg-0 --from east --to west --watch\n  ferryctl migrate db/pg-0 --from east --to east --storage-class fast-ssd")
    .action(async (vm: string, o: { from: string; to: string; storageClass?: string; targetNamespace?: string; name?: string; maxAttempts?: number; dryRun?: DryRun; watch?: boolean; output?: string }) => {
      output(o);
      parseVmArg(vm);
      let sourceStorageClasses: string[] | undefined;
      if (o.storageClass !== undefined) {
        const c = (await broker().call("clusters", "getCluster", { name: o.from })).cluster!;
        sourceStorageClasses = c.inventory?.storageClasses.map((s) => s.name);
      }
      const doc = migrationPlan({
        vm,
        from: o.from,
        to: o.to,
        ...(o.storageClass !== undefined ? { storageClass: o.storageClass } : {}),
        ...(sourceStorageClasses ? { sourceStorageClasses } : {}),
        ...(o.targetNamespace ? { targetNamespace: o.targetNamespace } : {}),
        ...(o.name ? { name: o.name } : {}),
        ...(o.maxAttempts ? { maxAttempts: o.maxAttempts } : {}),
      });
      await submit({ object: doc }, doc, o);
    });

  return { program, close: () => connection?.close() };
}

/** Whether a stored plan document is the one we would submit (both with defaults filled in). */
export function sameDocument(stored: Record<string, unknown> | undefined, local: MigrationPlan): boolean {
  if (!stored) return false;
  return canonical(stored) === canonical(local);
}

function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === "object" && !Array.isArray(val) ? Object.fromEntries(Object.entries(val as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : val,
  );
}

