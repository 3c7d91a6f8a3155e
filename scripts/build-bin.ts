// `npm run build:bin`: the bundled module dist/remora.mjs (Node >= 20, `deno run -A`), the
// single binary dist/remora-bun (bun build --compile) and, where Deno's runtime `denort` is
// at hand, dist/remora-deno (deno compile). Runs on the pinned Node 24 (type stripping).

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = join(root, "dist");
const bin = (name: string) => join(root, "node_modules", ".bin", name);
const MODULE = join(dist, "remora.mjs");
const BUN_BINARY = join(dist, "remora-bun");
const DENO_BINARY = join(dist, "remora-deno");

/**
 * The bundle is ESM, but pg and its helpers are CommonJS and call require() for Node
 * built-ins; esbuild's ESM output has no require, so the banner makes one.
 */
const BANNER = [
  "#!/usr/bin/env node",
  "import { createRequire as __remoraCreateRequire } from \"node:module\";",
  "const require = __remoraCreateRequire(import.meta.url);",
].join("\n");

/**
 * Source files that read a data file shipped beside them (the demo reads
 * policies/payments.yaml) would look for it next to the bundle or inside the binary's
 * virtual file system, where it is not; the text is inlined at build time instead.
 */
const FILE_READ = /readFile\(\s*new URL\(\s*"([^"]+)"\s*,\s*import\.meta\.url\s*\)\s*,\s*"utf8"\s*\)/g;

const inlineDataFiles: Plugin = {
  name: "inline-data-files",
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, async (args) => {
      const source = await readFile(args.path, "utf8");
      if (!source.includes("import.meta.url")) return undefined;
      const contents = source.replace(FILE_READ, (_m, rel: string) =>
        `Promise.resolve(${JSON.stringify(readFileSync(new URL(rel, `file://${args.path}`), "utf8"))})`);
      return { contents, loader: "ts" };
    });
  },
};

async function bundle(split?: string): Promise<void> {
  await build({
    entryPoints: [join(root, "src/cli/main.ts")],
    ...(split ? { outdir: split, splitting: true, entryNames: "remora" } : { outfile: MODULE }),
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    banner: { js: BANNER },
    // pg loads pg-native only when asked to (new pg.native); it is not installed.
    external: ["pg-native"],
    plugins: [inlineDataFiles],
    logLevel: "warning",
    legalComments: "none",
  });
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): boolean {
  const r = spawnSync(command, args, { cwd: root, stdio: "inherit", env });
  if (r.error) console.error(`build-bin: cannot run ${command}: ${r.error.message}`);
  return r.status === 0;
}

/**
 * From the same bundle split at each dynamic import: with --splitting Bun keeps those chunks
 * out of start-up, so a sidecar never loads the control plane, and node:http2 or node:tls
 * only with the first connection that needs them (one file would import every runtime
 * module it names at start: about 7 MB of idle RSS, issue 8).
 */
async function compileBun(): Promise<boolean> {
  const split = mkdtempSync(join(tmpdir(), "remora-split-"));
  try {
    await bundle(split);
    return run(bin("bun"), ["build", "--compile", "--splitting", join(split, "remora.js"), "--outfile", BUN_BINARY]);
  } finally {
    rmSync(split, { recursive: true, force: true });
  }
}

/** Where deno compile can get `denort`: DENORT_BIN, or Deno's download host if it answers. */
async function denortSource(): Promise<string | undefined> {
  const given = process.env.DENORT_BIN;
  if (given) {
    if (existsSync(given)) return `DENORT_BIN=${given}`;
    console.error(`build-bin: DENORT_BIN=${given} does not exist; not using it.`);
    return undefined;
  }
  try {
    const res = await fetch("https://dl.deno.land/", { method: "HEAD", signal: AbortSignal.timeout(3_000) });
    return res.status < 500 ? "dl.deno.land" : undefined;
  } catch {
    return undefined;
  }
}

function compileDeno(): boolean {
  return run(bin("deno"), ["compile", "-A", "--no-check", "--output", DENO_BINARY, MODULE]);
}

function size(path: string): string {
  const bytes = statSync(path).size;
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : `${(bytes / 1024).toFixed(0)} kB`;
}

async function main(): Promise<number> {
  mkdirSync(dist, { recursive: true });
  rmSync(DENO_BINARY, { force: true });

  await bundle();
  console.log(`built ${MODULE} (${size(MODULE)})`);

  if (!(await compileBun())) {
    console.error("build-bin: bun build --compile failed (see above).");
    return 1;
  }
  console.log(`built ${BUN_BINARY} (${size(BUN_BINARY)})`);

  const source = await denortSource();
  if (source === undefined) {
    console.log(
      "SKIPPED dist/remora-deno: deno compile needs its `denort` runtime, and neither DENORT_BIN " +
        "is set nor is dl.deno.land reachable. On Deno run `deno run -A dist/remora.mjs` instead.",
    );
  } else if (compileDeno()) {
    console.log(`built ${DENO_BINARY} (${size(DENO_BINARY)}) with denort from ${source}`);
  } else {
    console.error(`build-bin: deno compile failed with denort from ${source} (see above).`);
    return 1;
  }
  return 0;
}

mkdirSync(dirname(MODULE), { recursive: true });
process.exitCode = await main();
