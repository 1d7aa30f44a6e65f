// Drives the SmtpMailer component transpiled by jco, in Node: the second,
// independent WASI 0.2 host of the tests (tests/tests/jco.rs).
//
//   node driver.mjs MODULE.js < plan.json
//
// The plan is {op, server, messages}: `op` is "build" (each message's bytes,
// base64), "send" (each message over a new connection) or "session" (all of
// them over one session, then close). Values use jco's mapping of the WIT
// types: camelCase fields, enums as strings, variants as {tag, val}. The
// answer on stdout is one JSON object: {ok: true, results: [...]} or
// {ok: false, error: {code, stage, retry, message}} with the component's
// error (`stage` when its code carries one).

import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const plan = JSON.parse(readFileSync(0, "utf8"));
const mailer = await import(pathToFileURL(process.argv[2]).href);

// JSON has no Uint8Array: attachment bytes travel as base64.
function message(m) {
  return {
    replyTo: [], cc: [], bcc: [], headers: [], attachments: [],
    ...m,
    attachments: (m.attachments ?? []).map((a) => ({
      ...a,
      content: { tag: "bytes", val: new Uint8Array(Buffer.from(a.content, "base64")) },
    })),
  };
}

// A send report, with what JSON cannot hold made plain.
function report(r) {
  return JSON.parse(JSON.stringify(r, (_, v) => (typeof v === "bigint" ? Number(v) : v)));
}

function answer(value) {
  process.stdout.write(JSON.stringify(value) + "\n");
}

try {
  const messages = plan.messages.map(message);
  let results;
  switch (plan.op) {
    case "build":
      results = messages.map((m) => Buffer.from(mailer.message.build(m)).toString("base64"));
      break;
    case "send":
      results = messages.map((m) => report(mailer.sender.send(plan.server, m)));
      break;
    case "session": {
      const session = mailer.sessions.Session.open(plan.server);
      results = messages.map((m) => report(session.send(m)));
      session.close();
      break;
    }
    default:
      throw new Error(`unknown op ${plan.op}`);
  }
  answer({ ok: true, results });
} catch (e) {
  // jco throws a component `error` as a ComponentError carrying it.
  if (e && e.payload && e.payload.code) {
    const { code, retry, message } = e.payload;
    answer({ ok: false, error: { code: code.tag, stage: code.val?.stage, retry, message } });
  } else {
    answer({ ok: false, error: { code: "host", retry: "permanent", message: String(e?.stack ?? e) } });
  }
}
