// Launch one spec through the real @jupyterhub/binderhub-client and print each
// event as a JSON line. Usage: node launch.mjs <gateway-url> <provider/spec>
//
// The client is written for browsers: it reads document.cookie (for an XSRF
// token) and window.fetch/setTimeout. Node has fetch and timers; these two
// globals are all a browser would add here.
import { BinderRepository } from "@jupyterhub/binderhub-client/client.js";

globalThis.window = globalThis;
globalThis.document = { cookie: "", hidden: false, addEventListener() {}, removeEventListener() {} };

const [gateway, providerSpec] = process.argv.slice(2);
const repo = new BinderRepository(providerSpec, new URL(gateway.replace(/\/$/, "") + "/build/"));
const deadline = setTimeout(() => {
  console.error("timed out waiting for ready or failed");
  process.exit(3);
}, 240_000);
for await (const event of repo.fetch()) {
  console.log(JSON.stringify(event));
  if (event.phase === "ready" || event.phase === "failed") {
    repo.close();
    break;
  }
}
clearTimeout(deadline);
