/** A Writable that keeps what it is given; text() is all of it as UTF-8 (a process's stdout in tests). */
import { Writable } from 'node:stream';

export type Sink = Writable & { text(): string };

export function sink(): Sink {
  const chunks: Buffer[] = [];
  const w = new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(c);
      cb();
    },
  }) as Sink;
  w.text = () => Buffer.concat(chunks).toString('utf8');
  return w;
}
