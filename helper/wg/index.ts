// The helper's WireGuard engine: keys, one interface per party (kernel or wireguard-go), peers
// and the endpoint switch that moves a peer between relay and direct paths.
export { generateKeyPair, publicKeyOf, isWgKey, loadOrCreateKeyPair, parseKeyFile, keyToHex, keyFromHex, type WgKeyPair } from './keys.js';
export { createWgDevice, removeStaleInterface, type WgDevice, type WgDeviceOptions, type WgPeer, type WgPeerStats } from './device.js';
export {
  WgInputError,
  INTERFACE_NAME_RE,
  checkInterfaceName,
  checkKey,
  parseEndpoint,
  checkEndpoint,
  formatEndpoint,
  parseCidr,
  checkCidr,
  checkAllowedIps,
  type ParsedEndpoint,
  type ParsedCidr,
} from './validate.js';
export { UapiError, type DeviceSet, type DeviceState, type PeerSet, type PeerState } from './uapi.js';
export { UAPI_DIR, uapiSocketPath } from './uapi-socket.js';
export { CommandError } from './exec.js';
