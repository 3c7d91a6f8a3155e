// Protocol settings: `remora init --opaque-ports/--skip-ports` rules and the VIP local route
// (src/sidecar/redirect/), and the sidecar's `protocols:` block and proxy flags
// (src/sidecar/protocols.ts). Pure: no iptables, no sockets.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { isRemoraError } from "../../src/core/errors.ts";
import { applyScript, chainRules, parseRedirectFlags } from "../../src/sidecar/redirect/iptables-rules.ts";
import { hasVipRoute, vipRouteApply, vipRouteRemove } from "../../src/sidecar/redirect/vip-route.ts";
import { mergeProtocols, protocolsFromDocument, protocolsFromFlags } from "../../src/sidecar/protocols.ts";
import { parseConfigDocument } from "../../src/sidecar/config.ts";

describe("remora init: opaque and skipped ports", () => {
  test("opaque ports on the VIP range and skipped ports return before the redirect; other traffic is still redirected", () => {
    const o = parseRedirectFlags({ "proxy-uid": "1337", "inbound-ports": "8080", "opaque-ports": "5432,3306", "skip-ports": "22" });
    const rules = chainRules(o);
    const redirect = rules.indexOf("-A REMORA_OUTPUT -j REMORA_REDIRECT");
    for (const r of ["-A REMORA_OUTPUT -p tcp --dport 22 -j RETURN", "-A REMORA_OUTPUT -d 240.240.0.0/16 -p tcp --dport 5432 -j RETURN", "-A REMORA_OUTPUT -d 240.240.0.0/16 -p tcp --dport 3306 -j RETURN"]) {
      const at = rules.indexOf(r);
      assert.ok(at >= 0 && at < redirect, `${r} before the redirect:\n${rules.join("\n")}`);
    }
    assert.match(applyScript(o), /-A REMORA_INBOUND -p tcp --dport 8080 -j REMORA_IN_REDIRECT/);
  });

  test("without the new flags the rules are exactly as before", () => {
    const o = parseRedirectFlags({ "proxy-uid": "1337", "inbound-ports": "8080" });
    assert.deepEqual(o.opaquePorts, []);
    assert.deepEqual(o.skipPorts, []);
    assert.ok(!chainRules(o).some((r) => r.includes("240.240")));
  });

  test("contradictions are one sentence naming the flags", () => {
    const bad = (flags: Record<string, string>, re: RegExp) =>
      assert.throws(() => parseRedirectFlags({ "proxy-uid": "1", "inbound-ports": "8080", ...flags }), (e: unknown) => isRemoraError(e, "ERR_REDIRECT") && re.test(e.message) && !e.message.includes("\n"));
    bad({ "opaque-ports": "5432", "skip-ports": "5432" }, /--opaque-ports and --skip-ports both list port 5432/);
    bad({ "skip-ports": "8080" }, /--inbound-ports and --skip-ports both list port 8080/);
    bad({ "opaque-ports": "15001" }, /sidecar listener port/);
    bad({ "opaque-ports": "54x" }, /--opaque-ports "54x" is not a TCP port/);
    bad({ "vip-cidr": "240.240/16" }, /--vip-cidr/);
  });

  test("the VIP range becomes a local route only with opaque ports; low ports ask for the sysctl", () => {
    assert.deepEqual(vipRouteApply("240.240.0.0/16", []), { commands: [] });
    assert.deepEqual(vipRouteApply("240.240.0.0/16", [5432]), { commands: [["ip", "route", "replace", "local", "240.240.0.0/16", "dev", "lo", "table", "local"]] });
    assert.equal(vipRouteApply("240.240.0.0/16", [5432, 25]).unprivilegedPortStart, 25);
    assert.deepEqual(vipRouteRemove("240.240.0.0/16"), ["ip", "route", "del", "local", "240.240.0.0/16", "dev", "lo", "table", "local"]);
    const shown = "local 127.0.0.0/8 dev lo proto kernel scope host src 127.0.0.1\nlocal 240.240.0.0/16 dev lo scope host\n";
    assert.equal(hasVipRoute(shown, "240.240.0.0/16"), true);
    assert.equal(hasVipRoute(shown, "240.241.0.0/16"), false);
    assert.equal(hasVipRoute("local 240.240.0.0/160 dev lo", "240.240.0.0/16"), false);
  });
});

describe("sidecar protocols settings", () => {
  test("the static config's protocols block, with units", () => {
    const doc = parseConfigDocument({
      identity: { cert: "c", key: "k", bundle: "b" },
      protocols: { detect_timeout: "500ms", opaque_ports: [5432, 5432], skip_ports: [22], tcp_idle_timeout: "10m", websocket_idle_timeout: "1h", tcp: [{ listen: "127.0.0.1:15432", destination: "Postgres:5432" }], inbound_tcp_ports: [9000] },
    }, "sidecar.yaml");
    assert.deepEqual(protocolsFromDocument(doc.protocols, "sidecar.yaml: protocols."), {
      detectTimeoutMs: 500,
      opaquePorts: [5432],
      skipPorts: [22],
      tcpIdleTimeoutMs: 600_000,
      websocketIdleTimeoutMs: 3_600_000,
      tcp: [{ listen: "127.0.0.1:15432", destination: "postgres", port: 5432 }],
      inboundTcpPorts: [9000],
    });
  });

  test("errors name the field", () => {
    assert.throws(() => parseConfigDocument({ identity: { cert: "c", key: "k", bundle: "b" }, protocols: { opaque_ports: [70000] } }, "s.yaml"), /protocols\.opaque_ports/);
    assert.throws(() => parseConfigDocument({ identity: { cert: "c", key: "k", bundle: "b" }, protocols: { opaque: [1] } }, "s.yaml"), /protocols/);
    assert.throws(() => protocolsFromDocument({ tcp_idle_timeout: "forever" }, "s.yaml: protocols."), /s\.yaml: protocols\.tcp_idle_timeout: "forever" is not a duration/);
    assert.throws(() => protocolsFromDocument({ opaque_ports: [25], skip_ports: [25] }, "p."), /p\.opaque_ports and p\.skip_ports both list port 25/);
  });

  test("proxy flags: --tcp listeners add to the file's, other flags replace", () => {
    const flags = protocolsFromFlags({ tcp: ["127.0.0.1:15432=postgres:5432"], "opaque-ports": "5432,3306", "detect-timeout": "2s" });
    assert.deepEqual(flags, { opaquePorts: [5432, 3306], detectTimeoutMs: 2000, tcp: [{ listen: "127.0.0.1:15432", destination: "postgres", port: 5432 }] });
    const merged = mergeProtocols({ opaquePorts: [25], tcp: [{ listen: "127.0.0.1:1", destination: "a", port: 1 }] }, flags);
    assert.deepEqual(merged.opaquePorts, [5432, 3306]);
    assert.deepEqual(merged.tcp?.map((t) => t.destination), ["a", "postgres"]);
    assert.throws(() => protocolsFromFlags({ tcp: ["postgres:5432"] }), /--tcp "postgres:5432" is not ADDR=NAME:PORT/);
    assert.throws(() => protocolsFromFlags({ "skip-ports": "22,x" }), /--skip-ports "22,x" is not a list of TCP ports/);
  });
});
