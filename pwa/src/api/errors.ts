// One error type for every API failure, so views can branch on a code instead of on strings.

/** gRPC status codes the UI reacts to (the full list is in grpc's status.proto). */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }

  /**
   * True when the helper could not be reached at all. grpc-web reports a refused connection as
   * UNKNOWN (2), not UNAVAILABLE (14), so both count.
   */
  get helperDown(): boolean {
    return this.code === Code.UNKNOWN || this.code === Code.UNAVAILABLE;
  }
}

/** Normalises whatever grpc-web, fetch or a decoder threw into an ApiError. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown }).code;
    const message = (err as { message?: unknown }).message;
    if (typeof code === 'number') {
      return new ApiError(code, typeof message === 'string' && message !== '' ? decodeGrpcMessage(message) : `gRPC status ${code}`);
    }
    if (typeof message === 'string') return new ApiError(Code.UNKNOWN, message);
  }
  return new ApiError(Code.UNKNOWN, String(err));
}

/**
 * grpc-message travels percent-encoded (the gRPC HTTP/2 spec) and grpc-web 2.1.1 hands it over
 * as it came, so "café" would read "caf%C3%A9". Servers encode every '%', so one decode is right.
 */
function decodeGrpcMessage(message: string): string {
  if (!/%[0-9A-Fa-f]{2}/.test(message)) return message;
  try {
    return decodeURIComponent(message);
  } catch {
    return message;
  }
}
