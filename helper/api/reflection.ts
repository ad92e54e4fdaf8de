import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Server } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import type { Logger } from '../core/log.js';

// gRPC server reflection (grpcurl, evans, `buf curl --reflect`) for the local API, fed by a
// proto-loader package definition of our own proto files (ts-proto's generated code carries no
// descriptors). It reveals only the schema, which is public, so it sits outside helper/authz.

// dist/helper/api/ → the repository's proto/ (also where an install keeps it, next to dist/).
const PROTO_ROOT = fileURLToPath(new URL('../../../proto/', import.meta.url));

export function localApiProtoFiles(root = PROTO_ROOT): string[] {
  const dir = join(root, 'lanrage', 'v1');
  return readdirSync(dir).filter((f) => f.endsWith('.proto')).sort().map((f) => `lanrage/v1/${f}`);
}

export function addReflection(server: Pick<Server, 'addService'>, log: Logger, root = PROTO_ROOT): boolean {
  if (!existsSync(join(root, 'lanrage', 'v1'))) {
    log.warn('server reflection is off: the proto files are not next to the program', { expected: root });
    return false;
  }
  const pkg = loadSync(localApiProtoFiles(root), { includeDirs: [root], keepCase: true, defaults: true });
  new ReflectionService(pkg).addToServer(server);
  return true;
}
