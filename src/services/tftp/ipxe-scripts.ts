/**
 * boot/<mac-with-dashes>.ipxe over TFTP: the same per-node iPXE script the
 * HTTP service serves at that path (src/boot/ipxe-script.ts renders both), for
 * firmware or iPXE builds that fetch their script by TFTP. Rendered on every
 * request, so it follows the cluster model at once.
 */
import type { ClusterModel } from '../../cluster/model.ts';
import { renderNodeScript, type RootDiskProvider, type TelemetryIngest } from '../../boot/ipxe-script.ts';
import { intToIp } from '../../net/ipv4.ts';
import type { RenderedFile } from './resolver.ts';

const NAME = /^boot\/([0-9a-f]{2}(?:-[0-9a-f]{2}){5})\.ipxe$/i;

export class IpxeScripts implements RenderedFile {
  readonly label = 'ipxe-script';

  constructor(private readonly model: ClusterModel, private readonly httpBase: string, private readonly rootDisk?: RootDiskProvider, private readonly telemetry?: () => TelemetryIngest | undefined) {}

  match(name: string): boolean {
    return NAME.test(name);
  }

  render(name: string, clientIp: number): Buffer | undefined {
    const m = NAME.exec(name);
    if (!m) return undefined;
    try {
      // As over HTTP: the node's own address gets its iSCSI CHAP lines.
      return Buffer.from(renderNodeScript(this.model, m[1]!.replace(/-/g, ':'), this.httpBase, this.rootDisk, intToIp(clientIp), this.telemetry?.()));
    } catch {
      return undefined; // a broken template: "file not found" to the client; the HTTP service logs the error
    }
  }
}
