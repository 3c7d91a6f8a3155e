// A program that embeds remora instead of running a sidecar: it calls the logical name
// `payments` and the mesh resolves, balances, retries and speaks mTLS to payments' sidecar.
// Runs unchanged on all three runtimes (docs/embedding.md):
//   node examples/embed/client.ts examples/embed/mesh.yaml
//   bun examples/embed/client.ts examples/embed/mesh.yaml
//   deno run -A examples/embed/client.ts examples/embed/mesh.yaml
// With no file argument it enrolls with the control plane named by REMORA_CONTROL,
// REMORA_CA, REMORA_TOKEN and REMORA_SERVICE.

import process from "node:process";
import { createMesh, type Mesh } from "../../src/mod.ts";

const file = process.argv[2];
const env = process.env;
const mesh: Mesh = file
  ? await createMesh({ config: file })
  : await createMesh({
    control: { url: env.REMORA_CONTROL ?? "", ca: env.REMORA_CA ?? "", token: env.REMORA_TOKEN ?? "", service: env.REMORA_SERVICE ?? "" },
  });

try {
  const calls = Number(env.CALLS ?? 4);
  for (let i = 0; i < calls; i++) {
    const res = await mesh.fetch("http://payments/charge", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ amount: 5, n: i }),
    });
    console.log(`call ${i}: ${res.status} ${await res.text()}`);
  }
  // The same golden metrics a sidecar serves on /metrics, here for this program's calls.
  for (const line of mesh.metrics().split("\n")) {
    if (/^remora_(requests|retries|outlier_ejections)_total\{/.test(line)) console.log(line);
  }
} finally {
  await mesh.close();
}
