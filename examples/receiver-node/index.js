// An eventgate webhook receiver in Node: verifies each delivery with the
// standardwebhooks package and skips repeats by webhook-id.
//
//   EVENTGATE_WEBHOOK_SECRET=whsec_... PORT=9001 node index.js
//
// During a rotation, EVENTGATE_WEBHOOK_SECRET_OLD may hold the old secret:
// a delivery is accepted if either secret verifies it.
import http from "node:http";
import { Webhook } from "standardwebhooks";

const secrets = [process.env.EVENTGATE_WEBHOOK_SECRET, process.env.EVENTGATE_WEBHOOK_SECRET_OLD].filter(Boolean);
if (secrets.length === 0) {
  console.error("set EVENTGATE_WEBHOOK_SECRET to the secret POST /v1/webhooks returned");
  process.exit(1);
}
// standardwebhooks takes the whsec_ secret as is and checks the timestamp
// (5 minutes of tolerance).
const verifiers = secrets.map((s) => new Webhook(s));
const port = Number(process.env.PORT || 9001);
const path = process.env.HOOK_PATH || "/hooks/eventgate";
const maxBody = 4 << 20;

const seen = new Set(); // webhook-ids already handled; a real receiver stores them with its effects

function verify(body, headers) {
  let lastErr;
  for (const wh of verifiers) {
    try {
      return wh.verify(body, headers); // the parsed event
    } catch (err) {
      lastErr = err;
    }
  }
  throw lastErr;
}

const server = http.createServer((req, res) => {
  if (req.method !== "POST" || req.url !== path) {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  let size = 0;
  req.on("data", (c) => {
    size += c.length;
    if (size > maxBody) {
      res.writeHead(413).end();
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on("end", () => {
    // Verify the raw bytes: re-serialised JSON would not match the signature.
    const body = Buffer.concat(chunks).toString("utf8");
    const headers = {
      "webhook-id": req.headers["webhook-id"],
      "webhook-timestamp": req.headers["webhook-timestamp"],
      "webhook-signature": req.headers["webhook-signature"],
    };
    let event;
    try {
      event = verify(body, headers);
    } catch (err) {
      console.warn(`rejected: ${err.message}`);
      res.writeHead(400).end("invalid signature"); // any non-2xx is retried later
      return;
    }
    const id = headers["webhook-id"];
    if (seen.has(id)) {
      console.log(`duplicate ${id} skipped`);
    } else {
      seen.add(id);
      console.log(`event ${id}: seq ${event.seq} ${event.type} ${JSON.stringify(event.data)}`);
    }
    res.writeHead(204).end();
  });
});

server.listen(port, "127.0.0.1", () => console.log(`receiver listening on http://127.0.0.1:${port}${path}`));
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => server.close(() => process.exit(0)));
