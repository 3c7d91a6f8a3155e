// `remora run [proxy options] -- APP…`: a pod's entry point. Starts the sidecar, holds the
// app back until the sidecar is ready (certificate and config in hand), runs the app,
// forwards signals to it, and when the app exits drains the sidecar and exits with the
// app's code. So a job's pod completes, and no app's first call races its proxy.

import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:os";
import { RemoraError } from "../core/errors.ts";
import { UsageError } from "./args.ts";
import { remoraCommand } from "./self.ts";
import { onJsonLines } from "./json-lines.ts";
import { PARENT_PID_ENV } from "./parent-watch.ts";

const usage = `Usage: remora run [proxy options] [run options] -- COMMAND [ARGS…]

Starts a sidecar (\`remora proxy\` with the proxy options: --config FILE, or --control URL
--token … --service …), waits until its admin /ready answers 200, then runs COMMAND.
Signals (SIGINT, SIGTERM, SIGHUP) go to COMMAND; when it exits, the sidecar drains and
remora run exits with COMMAND's exit code.

Run options:
  --ready-timeout DUR  how long to wait for the sidecar to be ready (default 60s)
  --proxy-env          give COMMAND http_proxy/HTTP_PROXY pointing at the sidecar's outbound
                       listener (for hosts without \`remora init\`'s iptables redirection)
  --proxy-log LEVEL    sidecar log lines copied to stderr: all, warn (default) or none
  --app-uid UID        run COMMAND as this uid (root only; pair with \`remora init --proxy-uid\`)
  --proxy-uid UID      run the sidecar as this uid (root only)`;

interface RunOptions {
  readyTimeoutMs: number;
  proxyEnv: boolean;
  proxyLog: "all" | "warn" | "none";
  appUid?: number;
  proxyUid?: number;
}

/** Splits `remora run` argv into its own options, the proxy's options and the app's command. */
export function splitRunArgs(argv: readonly string[]): { options: RunOptions; proxyArgs: string[]; command: string[] } {
  const sep = argv.indexOf("--");
  if (sep < 0 || sep === argv.length - 1) {
    throw new UsageError("remora run: give the app's command after --, e.g. remora run --config sidecar.yaml -- curl -s http://payments/charge");
  }
  const options: RunOptions = { readyTimeoutMs: 60_000, proxyEnv: false, proxyLog: "warn" };
  const proxyArgs: string[] = [];
  const own = argv.slice(0, sep);
  for (let i = 0; i < own.length; i++) {
    const arg = own[i]!;
    const [flag, inline] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? own[++i];
      if (v === undefined) throw new UsageError(`remora run: ${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case "--ready-timeout":
        options.readyTimeoutMs = seconds(flag, value()) * 1000;
        break;
      case "--proxy-env":
        options.proxyEnv = true;
        break;
      case "--proxy-log": {
        const v = value();
        if (v !== "all" && v !== "warn" && v !== "none") throw new UsageError(`remora run: --proxy-log "${v}" must be all, warn or none`);
        options.proxyLog = v;
        break;
      }
      case "--app-uid":
        options.appUid = uid(flag, value());
        break;
      case "--proxy-uid":
        options.proxyUid = uid(flag, value());
        break;
      default:
        proxyArgs.push(arg);
    }
  }
  return { options, proxyArgs, command: argv.slice(sep + 1) as string[] };
}

function seconds(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text);
  if (!m) throw new UsageError(`remora run: ${flag} "${text}" is not a duration (e.g. 30s)`);
  const n = Number(m[1]);
  return m[2] === "ms" ? n / 1000 : m[2] === "m" ? n * 60 : n;
}

function uid(flag: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`remora run: ${flag} "${text}" is not a numeric uid`);
  return Number(text);
}

export async function runCommand(argv: string[]): Promise<number> {
  const sep = argv.indexOf("--");
  const head = sep < 0 ? argv : argv.slice(0, sep);
  if (head.includes("--help") || head.includes("-h")) return console.log(usage), 0;
  const { options, proxyArgs, command } = splitRunArgs(argv);
  if ((options.appUid !== undefined || options.proxyUid !== undefined) && process.getuid?.() !== 0) {
    throw new UsageError("remora run: --app-uid and --proxy-uid need root (they switch users)");
  }

  const sidecar = startSidecarProcess(proxyArgs, options);
  const pending: NodeJS.Signals[] = [];
  const early = (s: NodeJS.Signals) => pending.push(s);
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const s of signals) process.on(s, early);
  let ready: { outbound: string; admin: string };
  try {
    ready = await sidecar.ready(options.readyTimeoutMs, () => pending.length > 0);
  } catch (e) {
    for (const s of signals) process.off(s, early);
    await sidecar.stop();
    if (pending.length > 0) return 128 + (constants.signals[pending[0]!] ?? 15);
    throw e;
  }

  const env = { ...process.env };
  if (options.proxyEnv) {
    env.http_proxy = env.HTTP_PROXY = `http://${ready.outbound}`;
    env.no_proxy = env.NO_PROXY = "localhost,127.0.0.1,::1";
  }
  const app = spawn(command[0]!, command.slice(1), {
    stdio: "inherit",
    env,
    ...(options.appUid !== undefined ? { uid: options.appUid, gid: options.appUid } : {}),
  });
  const forward = (s: NodeJS.Signals) => {
    if (app.exitCode === null && app.signalCode === null) app.kill(s);
  };
  for (const s of signals) {
    process.off(s, early);
    process.on(s, forward);
  }
  for (const s of pending) forward(s);

  let sidecarDied = false;
  sidecar.child.once("exit", (code, signal) => {
    if (stopping) return;
    sidecarDied = true;
    console.error(`remora run: the sidecar exited (${signal ?? `code ${code}`}) while ${command[0]} was running; stopping ${command[0]}.${sidecar.tail()}`);
    forward("SIGTERM");
  });
  let stopping = false;
  const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((done) => {
    app.once("error", (error) => done({ code: null, signal: null, error }));
    app.once("exit", (code, signal) => done({ code, signal }));
  });
  for (const s of signals) process.off(s, forward);
  stopping = true;
  await sidecar.stop();
  if (result.error) throw new RemoraError("ERR_RUN", `cannot start ${command[0]}: ${result.error.message}.`);
  const appCode = result.code ?? 128 + (constants.signals[result.signal!] ?? 0);
  return sidecarDied && appCode === 0 ? 1 : appCode;
}

interface SidecarProcess {
  readonly child: ChildProcess;
  /** Resolves with the listener addresses once the admin /ready answers 200. */
  ready(timeoutMs: number, cancelled: () => boolean): Promise<{ outbound: string; admin: string }>;
  /** SIGTERM (the sidecar drains), SIGKILL if it is still there after the drain bound. */
  stop(): Promise<void>;
  /** The last lines the sidecar wrote, for an error message. */
  tail(): string;
}

const DRAIN_BOUND_MS = 10_000;

function startSidecarProcess(proxyArgs: string[], options: RunOptions): SidecarProcess {
  const cmd = remoraCommand(["proxy", ...proxyArgs]);
  // Its own process group: a Ctrl-C on the terminal reaches the app first, and the sidecar
  // drains only after the app is done with it.
  const child = spawn(cmd.command, cmd.args, {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    // If remora run itself is killed outright, the sidecar drains rather than lingering.
    env: { ...process.env, [PARENT_PID_ENV]: String(process.pid) },
    ...(options.proxyUid !== undefined ? { uid: options.proxyUid, gid: options.proxyUid } : {}),
  });
  const lines: string[] = [];
  let readyLine: { outbound: string; admin: string } | undefined;
  let onReadyLine: (() => void) | undefined;
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  const keep = (line: string) => {
    lines.push(line);
    if (lines.length > 20) lines.shift();
  };
  // Under "warn", a JSON line shows from level 40 up; a line that is not JSON always shows.
  const copy = (line: string, level: number) => {
    keep(line);
    if (options.proxyLog === "all" || (options.proxyLog === "warn" && level >= 40)) process.stderr.write(line + "\n");
  };
  onJsonLines(
    child.stdout!,
    (rec, line) => {
      copy(line, typeof rec.level === "number" ? rec.level : 0);
      if (rec.msg === "sidecar ready" && typeof rec.outbound === "string" && typeof rec.admin === "string") {
        readyLine = { outbound: rec.outbound, admin: rec.admin };
        onReadyLine?.();
      }
    },
    (line) => copy(line, 40),
  );
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => {
    for (const line of chunk.split("\n").filter(Boolean)) keep(line);
    if (options.proxyLog !== "none") process.stderr.write(chunk);
  });
  const tail = () => (lines.length ? `\n${lines.slice(-5).join("\n")}` : "");
  let gone = false;
  void exited.then(() => (gone = true));

  return {
    child,
    tail,
    async ready(timeoutMs, cancelled) {
      const deadline = Date.now() + timeoutMs;
      const failIfGone = () => {
        if (gone) throw new RemoraError("ERR_RUN", `the sidecar exited before it was ready (exit code ${child.exitCode}).${tail()}`);
        if (cancelled()) throw new RemoraError("ERR_RUN", "stopped by a signal before the app started.");
        if (Date.now() > deadline) throw new RemoraError("ERR_RUN", `the sidecar was not ready within ${timeoutMs / 1000}s; the app was not started.${tail()}`);
      };
      while (!readyLine) {
        failIfGone();
        await Promise.race([exited, new Promise<void>((r) => (onReadyLine = r)), sleep(100)]);
      }
      const url = `http://${readyLine.admin}/ready`;
      for (;;) {
        failIfGone();
        const ok = await fetch(url, { signal: AbortSignal.timeout(1000) })
          .then(async (r) => (await r.arrayBuffer(), r.ok))
          .catch(() => false);
        if (ok) return readyLine;
        await sleep(25);
      }
    },
    async stop() {
      if (gone) return;
      signalGroup(child, "SIGTERM");
      const killed = sleep(DRAIN_BOUND_MS).then(() => {
        if (!gone) signalGroup(child, "SIGKILL");
      });
      await Promise.race([exited, killed]);
      await exited;
    },
  };
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    child.kill(signal);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref?.());
