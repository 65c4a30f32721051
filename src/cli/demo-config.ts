/**
 * The embedded default: a demo cluster that lives entirely inside network
 * namespaces `bootherd demo` creates (198.18.0.0/24, a benchmarking range that
 * is never routed). Nothing here can answer DHCP on a real network.
 */
export const DEMO_PREFIX = 'bootherd-demo';

export function demoConfig(stateDir: string, filesDir: string): string {
  return `# bootherd demo cluster (embedded default)
cluster:
  name: demo
  domain: demo.lab
head:
  name: head
  address: 198.18.0.1
state: ${stateDir}
files: ${filesDir}
log:
  level: info
subnets:
  - network: 198.18.0.0/24
    interface: eth0
    pool: 198.18.0.100-198.18.0.199
    leaseTime: 1h
profiles:
  compute:
    kernel: vmlinuz
    initrd: initrd.img
    cmdline: console=ttyS0
nodes:
  - name: n001
    macs: [52:54:00:b0:00:01]
    ip: 198.18.0.11
    profile: compute
  - name: n002
    macs: [52:54:00:b0:00:02]
    ip: 198.18.0.12
    profile: compute
srv:
  - name: _slurmctld._tcp
    target: head.demo.lab
    port: 6817
`;
}
