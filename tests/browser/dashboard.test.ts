// `remora dashboard` in a real headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core): the page loads, shows the services and the orders -> payments edge,
// and follows the traffic: when payments breaks, the edge's success rate drops and its
// colour changes. A screenshot goes to a temp dir, and to docs/dashboard.png with
// REMORA_SCREENSHOT=1.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { http, REMORA, startApp, type Proxy, type TestApp } from "../integration/support/processes.ts";
import { freePort } from "../integration/support/control-process.ts";
import { startTestMesh, untilConfig, type TestMesh } from "../integration/support/mesh.ts";

const CHROMIUM = "/usr/bin/chromium";
const SCREENSHOT = fileURLToPath(new URL("../../docs/dashboard.png", import.meta.url));
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.error(`\n*** SKIPPING the dashboard browser test: ${CHROMIUM} is missing (apt-get install chromium) ***\n`);

let mesh: TestMesh | undefined;
let orders: Proxy;
let b2app: TestApp;
let dashboardUrl: string;
let stopTraffic = false;
let trafficDone: Promise<void> = Promise.resolve();
const controlArgs = () => mesh!.admin();

/** `remora dashboard` as a child process, resolved with its URL once it listens. */
function startDashboard(port: number): Promise<string> {
  return new Promise((ok, fail) => {
    const child: ChildProcess = spawn(process.execPath, [REMORA, "dashboard", "--listen", `127.0.0.1:${port}`, ...controlArgs()], { stdio: ["ignore", "pipe", "pipe"] });
    mesh!.defer(async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
    });
    let out = "";
    let err = "";
    const t = setTimeout(() => fail(new Error(`dashboard not up in 20 s: ${out} ${err}`)), 20_000);
    child.stderr!.on("data", (c) => (err += c));
    child.stdout!.on("data", (c) => {
      out += c;
      const m = /remora dashboard: (http:\/\/\S+\/)/.exec(out);
      if (m) (clearTimeout(t), ok(m[1]!));
    });
    child.once("exit", (code) => (clearTimeout(t), fail(new Error(`dashboard exited ${code}: ${err}`))));
  });
}

before(async () => {
  if (!hasChromium) return;
  mesh = await startTestMesh("remora-dash-");
  await mesh.apply(
    "payments.yaml",
    "route:\n  destination: payments\n  load_balancer: round_robin\n  retry_policy:\n    retry_on: connect-failure,5xx,reset\n    num_retries: 2\n    per_try_timeout: 250ms\n  tls:\n    mode: ISTIO_MUTUAL\noutlier_detection:\n  consecutive_5xx: 5\n  base_ejection_time: 30s\n",
  );
  // The reference scenario: B1 resets every connection, B2 answers.
  const b1app = await startApp("B1", "reset");
  b2app = await startApp("B2");
  mesh.defer(() => b1app.close());
  mesh.defer(() => b2app.close());
  await mesh.sidecar("payments", { app: b1app.address });
  await mesh.sidecar("payments", { app: b2app.address });
  orders = await mesh.sidecar("orders", { args: ["--destinations", "payments"] }); // held before the first call
  await untilConfig<{ endpoints: Record<string, unknown[]> }>(orders, (c) => (c.endpoints.payments?.length ?? 0) >= 2, 10_000);
  dashboardUrl = await startDashboard(await freePort());
  // Steady traffic for the whole test, bounded in count and time.
  trafficDone = (async () => {
    const end = Date.now() + 150_000;
    for (let i = 0; i < 6_000 && !stopTraffic && Date.now() < end; i++) {
      await http(orders.outbound, "http://payments/charge", { method: "POST", body: "{}" }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 40));
    }
  })();
});

after(async () => {
  stopTraffic = true;
  await trafficDone;
  await mesh?.close();
});

test("the dashboard shows services, the orders -> payments edge, and follows a breaking payments", { skip: hasChromium ? false : `${CHROMIUM} is missing` }, async () => {
  const { chromium } = await import("playwright-core");
  const profile = await mkdtemp(join(tmpdir(), "remora-chromium-"));
  const shots = await mkdtemp(join(tmpdir(), "remora-shots-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 900 },
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console error: ${m.text()}`);
    });
    // The token stays on the server side: the page never sees it.
    const requests: string[] = [];
    page.on("request", (r) => requests.push(`${r.url()} ${JSON.stringify(r.headers())}`));

    const response = await page.goto(`${dashboardUrl}?window=30s&refresh=1000`);
    assert.equal(response?.status(), 200);
    assert.match(response?.headers()["content-security-policy"] ?? "", /script-src 'sha256-/);
    assert.equal(await page.title(), "remora dashboard");

    const edge = page.locator('[data-testid="edge-orders-payments"]');
    await edge.waitFor({ timeout: 30_000 });
    await page.locator('[data-testid="edge-orders-payments"][data-health="good"]').waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('[data-testid="node-orders"]').count(), 1);
    assert.equal(await page.locator('[data-testid="node-payments"]').count(), 1);
    assert.match((await page.locator('[data-testid="service-payments"]').innerText()).replace(/\s+/g, " "), /^payments 2\/2 /);
    assert.equal(await page.locator('[data-testid="service-orders"]').count(), 1);
    assert.match((await page.locator('[data-testid="edge-row-orders-payments"]').innerText()).replace(/\s+/g, " "), /orders → payments 100\.00%/);
    // Proxies: every one ACKed its config; certificate expiry shown.
    await page.locator('[data-testid="proxies"] tbody tr[data-status="ACK"]').nth(2).waitFor({ timeout: 15_000 });
    assert.match(await page.locator('[data-testid="proxies"]').innerText(), /in 23h/);
    // B1 resets every connection: orders' outlier detection ejects it, retries hide it.
    await page.locator('[data-testid="endpoints"] tr[data-state="ejected"]').first().waitFor({ timeout: 30_000 });
    // Sparklines fill as polls come in.
    const sparkDeadline = Date.now() + 30_000;
    while (Number(await page.locator('[data-testid="spark-payments"]').getAttribute("data-points")) < 4) {
      assert.ok(Date.now() < sparkDeadline, "the payments sparkline never reached 4 points");
      await new Promise((r) => setTimeout(r, 250));
    }
    await page.screenshot({ path: join(shots, "dashboard-healthy.png"), fullPage: true });
    if (process.env.REMORA_SCREENSHOT === "1") await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.error(`dashboard screenshots in ${shots}`);

    // Break payments entirely: B2 resets too. The edge's success rate falls and it turns red.
    const before = Number(await edge.getAttribute("data-success"));
    assert.ok(before >= 0.99, `edge success before the break: ${before}`);
    b2app.mode = "reset";
    await page.locator('[data-testid="edge-orders-payments"][data-health="bad"]').waitFor({ timeout: 60_000 });
    const afterBreak = Number(await edge.getAttribute("data-success"));
    assert.ok(afterBreak < 0.95, `edge success after the break: ${afterBreak}`);
    assert.equal(await page.locator('[data-testid="edge-orders-payments"] line').getAttribute("stroke"), "#c62828");
    await page.screenshot({ path: join(shots, "dashboard-broken.png"), fullPage: true });

    assert.equal(await page.locator('[data-testid="error"]').innerText(), "");
    assert.deepEqual(problems, []);
    assert.ok(requests.length > 0 && requests.every((r) => !/authorization/i.test(r)), "no request from the page carries an Authorization header");
  } finally {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  }
});
