// Numbers as a person reads them. Memory in binary units (as OSes report RAM), traffic in decimal
// units per second (as network speeds are quoted).

const BINARY = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
const DECIMAL = ['B/s', 'kB/s', 'MB/s', 'GB/s'];

function scaled(value: number, base: number, units: readonly string[]): string {
  let v = Math.max(0, value);
  let i = 0;
  while (v >= base && i < units.length - 1) {
    v /= base;
    i++;
  }
  const digits = i === 0 || v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${units[i]}`;
}

export const formatBytes = (bytes: number): string => scaled(bytes, 1024, BINARY);
export const formatRate = (bytesPerSecond: number): string => scaled(bytesPerSecond, 1000, DECIMAL);
export const formatPercent = (p: number): string => `${Math.max(0, p).toFixed(p < 10 ? 1 : 0)} %`;

export function formatDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3_600);
  const m = Math.floor((s % 3_600) / 60);
  const sec = s % 60;
  if (d > 0) return `${d} d ${h} h ${m} min`;
  if (h > 0) return `${h} h ${m} min`;
  if (m > 0) return `${m} min ${sec} s`;
  return `${sec} s`;
}

export function formatClock(date: Date | undefined): string {
  return date ? date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }) : '—';
}
