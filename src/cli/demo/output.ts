// Where the demo's words go: narration on stdout for people, or JSON lines for scripts
// (--json); progress while waiting on stderr, one rewritten line on a terminal.

export interface Output {
  readonly json: boolean;
  /** A narration line; in --json mode `{type:"say", text, ...data}`. */
  say(text?: string, data?: Record<string, unknown>): void;
  /** A record only scripts want (an observed event, the summary, a trace). */
  record(type: string, data: Record<string, unknown>): void;
  /** "waiting for …" while something is pending; cleared by the next say(). */
  progress(text: string): void;
  /** Nothing more is printed (after Ctrl-C, while cleaning up). */
  mute(): void;
}

export function createOutput(json: boolean): Output {
  const tty = process.stderr.isTTY === true;
  let shown: string | undefined;
  let muted = false;
  const clear = () => {
    if (shown !== undefined && tty) process.stderr.write("\r\x1b[K");
    shown = undefined;
  };
  return {
    json,
    say(text = "", data = {}) {
      if (muted) return;
      clear();
      if (json) {
        if (text !== "") console.log(JSON.stringify({ type: "say", text, ...data }));
      } else {
        console.log(text);
      }
    },
    record(type, data) {
      if (!json || muted) return;
      clear();
      console.log(JSON.stringify({ type, ...data }));
    },
    progress(text) {
      if (text === shown || muted) return;
      if (tty) process.stderr.write(`\r\x1b[K${text}`);
      else process.stderr.write(`${text}\n`);
      shown = text;
    },
    mute() {
      clear();
      muted = true;
    },
  };
}
