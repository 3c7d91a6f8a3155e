// The readers behind `bench/layers.ts --perf` and `bench/perf-profile.ts` (bench/support/perf-split.ts):
// perf's report text, perf script stacks and JavaScriptCore's JITDump, as this machine's perf 6.1 and
// Bun 1.4.5 write them.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { concat } from "../../src/core/identity/der.ts";
import { chargeToNearestJs, jitDumpToPerfMap, NO_JAVASCRIPT, splitFromReports } from "../../bench/support/perf-split.ts";

// `perf report --stdio -n -g none --sort dso` of a recording made with -g: two percentage columns.
const BY_DSO = `# Samples: 11K of event 'cpu-clock'
# Event count (approx.): 2777750000
#
# Children      Self       Samples  Shared Object
# ........  ........  ............  .................
#
    51.39%    51.39%          5710  bun.exe
    33.55%    33.55%          3728  [kernel.kallsyms]
    12.90%    12.90%          1433  [JIT] tid 26639
     1.76%     1.76%           196  libc.so.6
     0.40%     0.40%            44  [vdso]
`;
// Without -g there is one percentage column.
const BY_THREAD = `#
    94.10%         10455    26639:bun
     3.87%           430    26641:mi-scavenger
     0.79%            88    26645:JSCWarmUp
`;

describe("perf report split", () => {
  test("kernel, JIT and the rest of user space, by samples", () => {
    const s = splitFromReports(BY_DSO, BY_THREAD);
    assert.equal(s.samples, 5710 + 3728 + 1433 + 196 + 44);
    assert.ok(Math.abs(s.kernel - 3728 / s.samples) < 1e-9);
    assert.ok(Math.abs(s.jit - 1433 / s.samples) < 1e-9);
    // libc and the vDSO are native user code, with the runtime's executable.
    assert.ok(Math.abs(s.native - (5710 + 196 + 44) / s.samples) < 1e-9);
    assert.ok(Math.abs(s.otherThreads - (430 + 88) / s.samples) < 1e-9);
  });

  test("an empty recording is all zeros, not NaN", () => {
    assert.deepEqual(splitFromReports("# nothing\n", ""), { kernel: 0, native: 0, jit: 0, otherThreads: 0, samples: 0 });
  });
});

/** A JITDump: header (magic, version, header size, ...) then records. */
function jitDump(records: Array<{ id: number; address?: bigint; size?: bigint; name?: string }>): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  const header = new Uint8Array(40);
  const hv = new DataView(header.buffer);
  hv.setUint32(0, 0x4a695444, true);
  hv.setUint32(4, 1, true);
  hv.setUint32(8, 40, true);
  parts.push(header);
  for (const r of records) {
    const name = enc.encode(`${r.name ?? ""}\0`);
    const body = r.id === 0 ? 40 + name.length + 8 : 8; // code bytes follow the name
    const rec = new Uint8Array(16 + body);
    const v = new DataView(rec.buffer);
    v.setUint32(0, r.id, true);
    v.setUint32(4, rec.length, true);
    if (r.id === 0) {
      v.setBigUint64(24, r.address ?? 0n, true); // vma
      v.setBigUint64(32, r.address ?? 0n, true);
      v.setBigUint64(40, r.size ?? 0n, true);
      rec.set(name, 56);
    }
    parts.push(rec);
  }
  return concat(...parts);
}

describe("JITDump to perf map", () => {
  test("code loads become map lines; other records are skipped", () => {
    const dump = jitDump([
      { id: 0, address: 0x7f2307629000n, size: 0x180n, name: "JSC-Thunk: DefaultCall" },
      { id: 2 }, // a code move
      { id: 0, address: 0x7f23076a0040n, size: 0x2f0n, name: "JSC-FTL: parseHead#CZXcqV" },
    ]);
    assert.equal(jitDumpToPerfMap(dump), "7f2307629000 180 JSC-Thunk: DefaultCall\n7f23076a0040 2f0 JSC-FTL: parseHead#CZXcqV\n");
  });

  test("a dump cut short mid-record keeps what came before", () => {
    const dump = jitDump([{ id: 0, address: 0x1000n, size: 0x10n, name: "a" }, { id: 0, address: 0x2000n, size: 0x10n, name: "b" }]);
    assert.equal(jitDumpToPerfMap(dump.subarray(0, dump.length - 5)), "1000 10 a\n");
  });
});

describe("charging samples to the nearest JavaScript function", () => {
  const script = [
    // main thread: native code called by parseHead
    "100 \n\t 1b426d6 [unknown] (/x/bun.exe)\n\t 7f00000010 JSC-FTL: parseHead#CZXcqV (/tmp/perf-100.map)\n\t 7f00000020 JSC-FTL: onData#A (/tmp/perf-100.map)\n",
    // main thread: parseHead's own code
    "100 \n\t 7f00000010 JSC-FTL: parseHead#CZXcqV (/tmp/perf-100.map)\n\t 1a00000 [unknown] (/x/bun.exe)\n",
    // main thread: waiting in the kernel with no JavaScript on the stack
    "100 \n\t ffffffff81000000 finish_task_switch ([kernel.kallsyms])\n\t 1e043c7 [unknown] (/x/bun.exe)\n",
    // main thread: native code reached through a thunk from onData
    "100 \n\t 1b426d6 [unknown] (/x/bun.exe)\n\t 7f00000030 JSC-Thunk: CallTrampoline (/tmp/perf-100.map)\n\t 7f00000020 JSC-FTL: onData#A (/tmp/perf-100.map)\n",
    // another thread
    "101 \n\t 1b426d6 [unknown] (/x/bun.exe)\n",
  ].join("\n");

  test("a sample goes to the first JIT frame from the top, counted as below when the top frame is not it", () => {
    const r = chargeToNearestJs(script);
    assert.equal(r.samples, 5);
    assert.equal(r.mainThread, 4);
    assert.deepEqual(r.byFunction.get("JSC-FTL: parseHead#CZXcqV"), { all: 2, below: 1 });
    assert.deepEqual(r.byFunction.get(NO_JAVASCRIPT), { all: 1, below: 0 });
  });

  test("a thunk between native code and JavaScript is looked through", () => {
    const r = chargeToNearestJs(script);
    assert.deepEqual(r.byFunction.get("JSC-FTL: onData#A"), { all: 1, below: 1 });
    assert.equal(r.byFunction.has("JSC-Thunk: CallTrampoline"), false);
  });
});
