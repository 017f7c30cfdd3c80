// Check saved webhook requests with the official Node `pusher` library (5.3.4), the way a
// receiver written with it would: pusher.webhook({headers, rawBody}).isValid().
//
// usage: node webhook_validate.js cases.json
// cases.json: {"appId", "key", "secret",
//              "cases": [{"name", "headers": {lower-case name: value}, "rawBody": "..."}]}
// prints one JSON line: {name: {"valid": bool, "events": [...] | null, "time_ms": n | null}}
"use strict"
const fs = require("fs")
const Pusher = require("pusher")

const input = JSON.parse(fs.readFileSync(process.argv[2], "utf8"))
const pusher = new Pusher({ appId: input.appId, key: input.key, secret: input.secret })
const out = {}
for (const c of input.cases) {
  const hook = pusher.webhook({ headers: c.headers, rawBody: c.rawBody })
  const valid = hook.isValid()
  out[c.name] = {
    valid,
    events: valid ? hook.getEvents() : null,
    time_ms: valid ? hook.getData().time_ms : null,
  }
}
process.stdout.write(JSON.stringify(out) + "\n")
