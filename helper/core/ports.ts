// The helper's default ports, apart from the helper itself: the CLI needs them without loading it.

export const DEFAULT_HTTP_PORT = 8666;
export const DEFAULT_GRPC_PORT = 8667;
export const DEFAULT_CONTROL_PORT = 8670;
