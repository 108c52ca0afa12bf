/**
 * Hidden terminal input for secrets (the 64-digit key now, passwords later). Nothing typed is
 * echoed, so the secret never lands in the terminal's scrollback.
 */
import type { ReadStream } from 'node:tty';
import { UsageError } from 'backvault/errors';

/** The streams a prompt needs: a terminal to read from and one to write the question to. */
export interface PromptIo {
  stdin: NodeJS.ReadableStream & Partial<Pick<ReadStream, 'isTTY' | 'setRawMode'>>;
  stderr: { write(chunk: string): unknown; isTTY?: boolean };
}

/** Raised when the user presses Ctrl-C at a prompt; the CLI turns it into exit 130. */
export class PromptInterrupted extends Error {
  constructor() {
    super('interrupted at prompt');
    this.name = 'PromptInterrupted';
  }
}

/** True when both input and output are terminals, i.e. a person can answer a prompt. */
export function canPrompt(io: PromptIo): boolean {
  return Boolean(io.stdin.isTTY && io.stderr.isTTY && io.stdin.setRawMode);
}

/**
 * Ask `question` on stderr and read one line from the terminal without echoing it.
 * @throws UsageError when there is no terminal to ask on.
 * @throws PromptInterrupted when the user presses Ctrl-C.
 */
export function promptHidden(io: PromptIo, question: string): Promise<string> {
  return promptRaw(io, question, false);
}

/**
 * Ask `question` on stderr and read one line from the terminal, echoed (for answers that
 * are not secret, such as "y").
 * @throws UsageError when there is no terminal to ask on.
 * @throws PromptInterrupted when the user presses Ctrl-C.
 */
export function promptLine(io: PromptIo, question: string): Promise<string> {
  return promptRaw(io, question, true);
}

function promptRaw(io: PromptIo, question: string, echo: boolean): Promise<string> {
  const { stdin, stderr } = io;
  if (!canPrompt(io) || !stdin.setRawMode) {
    throw new UsageError('cannot prompt: standard input is not a terminal');
  }
  const setRawMode = stdin.setRawMode.bind(stdin);
  // Raw mode (no echo) before the question appears: keys typed as soon as it shows must
  // not be echoed by the terminal.
  setRawMode(true);
  stderr.write(question);
  return new Promise((resolve, reject) => {
    let answer = '';
    const done = (err?: Error): void => {
      stdin.removeListener('data', onData);
      setRawMode(false);
      stdin.pause();
      stderr.write('\n');
      if (err) reject(err);
      else resolve(answer);
    };
    const onData = (chunk: Buffer | string): void => {
      for (const ch of typeof chunk === 'string' ? chunk : chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\x04') return done();
        if (ch === '\x03') return done(new PromptInterrupted());
        if (ch === '\x7f' || ch === '\b') {
          if (echo && answer.length > 0) stderr.write('\b \b');
          answer = answer.slice(0, -1);
        } else if (ch === '\x15') {
          if (echo) stderr.write('\b \b'.repeat(answer.length));
          answer = ''; // Ctrl-U clears the line, as in a shell
        } else if (ch >= ' ') {
          answer += ch;
          if (echo) stderr.write(ch);
        }
      }
    };
    stdin.resume();
    stdin.on('data', onData);
  });
}
