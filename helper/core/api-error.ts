import { status as Status } from '@grpc/grpc-js';

// An error that carries the gRPC status a client should see. Anything else thrown by a
// handler becomes INTERNAL with a generic message, so internals never leak to callers.
export class ApiError extends Error {
  constructor(readonly code: Status, message: string) {
    super(message);
    this.name = 'ApiError';
  }
}

export const invalidArgument = (msg: string): ApiError => new ApiError(Status.INVALID_ARGUMENT, msg);
export { Status };
