// The helper itself: GetStatus, and how its fields read to a person.
import {
  ControlPlaneMode,
  GetStatusRequest,
  HelperServiceDefinition,
  type HelperStatus,
} from '../gen/lanrage/v1/helper.js';
import { unary } from '../api/transport.js';
import { liveStore } from './store.js';

export type { HelperStatus };

export async function getStatus(): Promise<HelperStatus | undefined> {
  const res = await unary(HelperServiceDefinition, HelperServiceDefinition.methods.getStatus, GetStatusRequest.fromPartial({}));
  return res.status;
}

/**
 * Fills the store before the first Watch message arrives. The stream's own snapshot wins if it
 * came first; failures are left to the stream, which owns the connection state.
 */
export async function primeStatus(): Promise<void> {
  try {
    const status = await getStatus();
    if (status && !liveStore.state.status) liveStore.setStatus(status);
  } catch {
    // The Watch stream reports the outage.
  }
}

export function controlPlaneLabel(mode: ControlPlaneMode): string {
  switch (mode) {
    case ControlPlaneMode.CONTROL_PLANE_MODE_EMBEDDED:
      return 'Embedded (this helper)';
    case ControlPlaneMode.CONTROL_PLANE_MODE_REMOTE:
      return 'Remote server';
    default:
      return 'Unknown';
  }
}
