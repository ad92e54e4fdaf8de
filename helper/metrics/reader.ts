import si from 'systeminformation';
import { procReader } from './proc-reader.js';
import type { RawReading } from './sample.js';

// The only module that touches the OS for metrics; systeminformation does the per-platform work.
export interface MetricsReader {
  read(): Promise<RawReading>;
}

export function systemReader(): MetricsReader {
  // Linux: /proc directly (systeminformation blocks the event loop in spawnSync: proc-reader.ts).
  if (process.platform === 'linux') return procReader();
  return {
    async read(): Promise<RawReading> {
      const [load, mem, ifaces] = await Promise.all([si.currentLoad(), si.mem(), si.networkStats('*')]);
      let rx = 0;
      let tx = 0;
      for (const n of ifaces) {
        if (n.iface === 'lo' || n.iface.startsWith('lo')) continue;
        rx += n.rx_bytes || 0;
        tx += n.tx_bytes || 0;
      }
      const cpu = process.cpuUsage();
      return {
        atMs: Date.now(),
        cpuPercent: load.currentLoad,
        // "active" excludes page cache, which is what a player means by memory in use.
        memUsed: mem.active,
        memTotal: mem.total,
        rxBytes: rx,
        txBytes: tx,
        helperCpuMicros: cpu.user + cpu.system,
        helperRss: process.memoryUsage.rss(),
      };
    },
  };
}
