import si from 'systeminformation';
import type { ProcInfo } from './match.js';
import type { ProcessSource } from './detector.js';

// Windows and macOS process listing through systeminformation (WMI / ps underneath). Written
// against its documented fields; NOT exercised by tests here (this machine runs Linux, where
// LinuxProcSource is used). It is far heavier than /proc, so the helper polls it less often.

export class SystemInformationSource implements ProcessSource {
  constructor(readonly platform: 'windows' | 'darwin') {}

  async list(): Promise<ProcInfo[]> {
    const data = await si.processes();
    return data.list.map((p) => {
      const path = p.path ? `${p.path.replace(/[\\/]+$/, '')}${this.platform === 'windows' ? '\\' : '/'}${p.name}` : p.name;
      return { pid: p.pid, exe: p.name, argv0: path, cmdline: [p.command, p.params].filter(Boolean).join(' ').slice(0, 4096) };
    });
  }
}
