/**
 * Sends seeded junk datagrams to a UDP server, run inside a lab namespace:
 *   ip netns exec NS node --import tsx test/helpers/udp-fuzz.ts --to 198.18.0.1 --port 67 --count 100000 --seed 1 [--from-port 68] [--vectors FILE.json]
 * Half are random bytes of random length, half mutations of the recorded
 * vectors (if given). Paced in bursts so the server's socket buffer is not
 * simply overrun. Prints "sent N" when done.
 */
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { mutate, prng, randomBytes } from './fuzz.ts';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1]!);
const to = args.get('to')!;
const port = Number(args.get('port'));
const count = Number(args.get('count') ?? 10000);
const rand = prng(Number(args.get('seed') ?? 1));
const vectors = args.has('vectors')
  ? (JSON.parse(readFileSync(args.get('vectors')!, 'utf8')) as { vectors: Array<{ hex: string }> }).vectors.map((v) => Buffer.from(v.hex, 'hex'))
  : [];

const socket = dgram.createSocket('udp4');
let sent = 0;
function burst(): void {
  for (let i = 0; i < 200 && sent < count; i++, sent++) {
    const junk = vectors.length && rand() % 2 ? mutate(rand, vectors[rand() % vectors.length]!) : randomBytes(rand, rand() % 700);
    socket.send(junk, port, to);
  }
  if (sent < count) setTimeout(burst, 2);
  else setTimeout(() => { process.stdout.write(`sent ${sent}\n`); socket.close(); }, 200);
}
socket.bind(Number(args.get('from-port') ?? 0), burst);
