import { formatControlUrls, parseControlUrls } from '../controlclient/control-urls.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { flag, portFlag, type ParsedArgs } from '../core/args.js';
import { HelperState } from '../core/helper-state.js';
import type { Logger } from '../core/log.js';
import { defaultStateDir, ensureStateDir } from '../core/state-dir.js';
import { loadOrCreateToken } from '../core/token.js';
import { packageVersion } from '../core/version.js';
import { HISTORY_STEP_SECONDS, MetricsHistory } from '../metrics/history.js';
import { systemReader } from '../metrics/reader.js';
import { procReader } from '../metrics/proc-reader.js';
import { PathChanges, PeerMetrics } from '../metrics/peer-metrics.js';
import { PeerHistory } from '../metrics/peer-history.js';
import { prometheusRegistry } from '../metrics/prometheus.js';
import { toProtoPathChange, toProtoPeerSample } from '../api/metrics-service.js';
import { MetricsSampler } from '../metrics/sampler.js';
import { openDatabase } from '../store/db.js';
import { HELPER_MIGRATIONS } from '../store/migrations.js';
import { SettingsRepo } from '../store/settings-repo.js';
import { startHttpServer } from '../web/server.js';
import { metricsDefinition, metricsHandlers, toProtoSample } from '../api/metrics-service.js';
import { startGrpcServer } from '../api/server.js';
import { settingsDefinition, settingsHandlers, settingsMutating } from '../api/settings-service.js';
import { statusDefinition, statusHandlers } from '../api/status-service.js';
import { watchDefinition, watchHandlers } from '../api/watch-service.js';
import { partyDefinition, partyHandlers, partyMutating, peerDefinition, peerHandlers, peerMutating } from '../api/party-service.js';
import { relayConfigFromArgs, type RelayConfig } from '../control/relay-config.js';
import { startControlServer, type ControlServer } from '../control/server.js';
import { ControlExposure } from '../control/exposure.js';
import { PartyManager } from '../party/manager.js';
import { PartyLan } from '../lan/party-lan.js';
import { Netchecker } from '../net/netchecker.js';
import { NetMon } from '../net/netmon.js';
import { runNetcheck } from '../net/netcheck-run.js';
import { networkDefinition, networkHandlers, networkMutating, toProtoNatReport } from '../api/network-service.js';
import { StateRepo } from '../store/state-repo.js';
import { advertisedControlUrl, stunAddressFlags } from './control.js';
import { localAccess } from '../authz/local-access.js';
import type { WatchEvent } from '../core/helper-state.js';
import { DiscordNotifier } from '../discord/notifier.js';
import { discordDefinition, discordHandlers, discordMutating } from '../api/discord-service.js';
import { ServerBrowser, serverBrowserDefinition, serverBrowserMutating } from '../servers/server-browser.js';
import { FavoritesRepo } from '../store/favorites-repo.js';
import { startGames } from '../games/games.js';
import { toProtoDetection, toProtoSession } from '../games/proto.js';
import { membersPlaying, SessionRecorder } from '../games/session-recorder.js';
import { GameSessionsRepo } from '../store/game-sessions-repo.js';
import { sameNetns } from '../servers/proc-sockets.js';
import { GameProfilesRepo } from '../store/game-profiles-repo.js';
import { gameDefinition, gameHandlers, gameMutating } from '../api/game-service.js';
import { RemoteAccess } from '../remote/remote-access.js';
import { PairedDevicesRepo } from '../store/paired-devices-repo.js';
import { remoteAccessDefinition, remoteAccessHandlers, remoteAccessNeeds, remotePairingDefinition, remotePairingHandlers, remotePairingNeeds } from '../api/remote-service.js';

import { DEFAULT_CONTROL_PORT, DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT } from '../core/ports.js';
export { DEFAULT_CONTROL_PORT, DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT };

export interface HelperOptions {
  stateDir: string;
  host: string;
  httpPort: number;
  grpcPort: number;
  pwaDir: string | null;
  allowedHosts: string[];
  /** Control server to use (URL[,URL...]: instances of one service); undefined: settings.control_server_url, else the embedded one. */
  controlUrl: string | undefined;
  /** Embedded control server: gRPC port (STUN on the next two ports) and the URL invite links carry. */
  controlPort: number;
  controlAdvertise: string | undefined;
  /** Embedded control server: TURN relays it hands to party members (--relay, --turn-*). */
  relays?: RelayConfig | undefined;
  interfaceName: string | undefined;
  fastPath: boolean;
  /** Embedded control server's STUN addresses (--stun-ip / --stun-alt-ip), see stunAddressFlags. */
  controlStun: { stunHost?: string; stunAltHost?: string };
  /** --operator USER|UID: the local user who may control the helper besides root (helper/authz/operator.ts). */
  operator?: string | undefined;
  /** Tests only: accept http://127.0.0.1 Discord webhooks (a fake Discord), see discord/webhook-url.ts. */
  discordTestLoopback?: boolean;
}

export function helperOptions(args: ParsedArgs): HelperOptions {
  const builtPwa = fileURLToPath(new URL('../../pwa/', import.meta.url));
  const host = flag(args, 'listen') ?? '127.0.0.1';
  if (!['127.0.0.1', '::1', 'localhost'].includes(host)) {
    throw new Error('--listen must be a loopback address: remote access comes through pairing, not by opening the local API');
  }
  return {
    stateDir: flag(args, 'state-dir') ?? defaultStateDir(),
    host,
    httpPort: portFlag(args, 'http-port', DEFAULT_HTTP_PORT),
    grpcPort: portFlag(args, 'grpc-port', DEFAULT_GRPC_PORT),
    pwaDir: flag(args, 'pwa-dir') ?? (existsSync(join(builtPwa, 'index.html')) ? builtPwa : null),
    allowedHosts: args.flags.get('allow-host') ?? [],
    controlUrl: controlUrlFlag(flag(args, 'control-url')),
    controlPort: portFlag(args, 'control-port', DEFAULT_CONTROL_PORT),
    controlAdvertise: flag(args, 'control-advertise'),
    relays: relayConfigFromArgs(args),
    interfaceName: flag(args, 'interface'),
    fastPath: flag(args, 'fast-path') !== 'off',
    discordTestLoopback: args.flags.has('discord-test-loopback'),
    controlStun: stunAddressFlags({ ...args, flags: new Map([...args.flags].filter(([k]) => k !== 'listen')) }),
    operator: flag(args, 'operator'),
  };
}

/** --control-url URL[,URL...]: checked now, so that a typo stops the helper with the reason. */
function controlUrlFlag(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  try {
    return formatControlUrls(parseControlUrls(raw));
  } catch (err) {
    throw new Error(`--control-url: ${(err as Error).message}`);
  }
}

export interface RunningHelper {
  grpcPort: number;
  httpPort: number;
  stop(): Promise<void>;
}

export async function startHelper(opts: HelperOptions, log: Logger): Promise<RunningHelper> {
  ensureStateDir(opts.stateDir);
  const token = loadOrCreateToken(opts.stateDir);
  const access = await localAccess({ stateDir: opts.stateDir, operatorFlag: opts.operator, token, host: opts.host, log });
  const db = openDatabase(join(opts.stateDir, 'helper.db'), HELPER_MIGRATIONS);
  const state = new HelperState(packageVersion(), new SettingsRepo(db));
  const history = new MetricsHistory(db);
  const shutdown = new AbortController();
  // Game profiles and detection; started/stopped go out on the Watch topic GAMES, and so do the
  // game sessions they make (stored in SQLite).
  const gameSessions = new GameSessionsRepo(db);
  const recorder = new SessionRecorder({
    repo: gameSessions,
    log: log.child({ part: 'game-sessions' }),
    gameName: (id) => games.catalog.get(id)?.name ?? id,
    onRecorded: (s) => state.events.publish({ gameSession: toProtoSession(s) }),
    ours: (pid) => sameNetns(pid),
  });
  const games = startGames({
    store: new GameProfilesRepo(db, (id, errors) => log.warn('skipping an invalid custom game profile in the database', { id, errors })),
    log: log.child({ part: 'games' }),
    onStarted: (d) => {
      recorder.started(d);
      state.events.publish({ gameDetection: toProtoDetection(d, games.catalog.get(d.profileId)?.name ?? d.profileId, true) });
    },
    onStopped: (d) => {
      recorder.stopped(d);
      state.events.publish({ gameDetection: toProtoDetection(d, games.catalog.get(d.profileId)?.name ?? d.profileId, false) });
    },
  });

  // The embedded control server, unless this helper is told to use another one.
  const configuredControl = opts.controlUrl ?? (state.settings.controlServerUrl || undefined);
  if (configuredControl && opts.relays) log.warn('--relay is for the embedded control server, which is not started: this helper uses another one', { controlUrl: configuredControl });
  let control: ControlServer | undefined;
  if (!configuredControl) {
    control = await startControlServer({
      host: '0.0.0.0',
      grpcPort: opts.controlPort,
      stunPort: opts.controlPort === 0 ? 0 : opts.controlPort + 1,
      dbFile: join(opts.stateDir, 'control.db'),
      log: log.child({ part: 'control' }),
      ...(opts.relays && { relays: opts.relays }),
      ...opts.controlStun,
    });
  }
  const controlUrl = configuredControl ?? opts.controlAdvertise ?? advertisedControlUrl(control!.grpcPort);
  // Friends elsewhere reach the embedded server only through the router (unless told where: --control-advertise).
  let partyRef: PartyManager | undefined;
  const exposure =
    control && !opts.controlAdvertise
      ? new ControlExposure({ lanUrl: controlUrl, controlPort: control.grpcPort, stunPorts: control.stunPorts, log, onChange: () => partyRef?.publishParty() })
      : undefined;
  // The LAN illusion: runs while in a party with broadcast_enabled on; settings apply live.
  // Party-wide discovery and the server browser (servers/): announced through the control plane.
  let servers: ServerBrowser | undefined;
  const lan = new PartyLan({ log, settings: () => state.settings, publish: (stats) => state.events.publish({ lan: stats }), partyTargets: () => servers!.targets() });
  state.settingsSaved.subscribe(() => void lan.settingsChanged());
  // The NAT report: against the STUN service of the control server we are connected to (known
  // once a party is created, joined or resumed), on connect, every 5 minutes and on request.
  let netcheck: Netchecker | undefined;
  const discord = new DiscordNotifier({ events: state.events, store: new StateRepo(db), log, deviceName: () => state.settings.deviceName, allowLoopback: opts.discordTestLoopback === true });
  // Per-peer metrics (helper/metrics): samples every second while in a party, history in SQLite.
  const peerHistory = new PeerHistory(db);
  let peerMetrics: PeerMetrics | undefined;
  const pathChanges = new PathChanges((c) => {
    peerHistory.addPathChange(c);
    state.events.publish({ pathChange: toProtoPathChange(c) });
  });
  const party = new PartyManager({
    onPath: (p) => pathChanges.observe(p.deviceId, p.name, p.path, p.endpoint, p.pathReason),
    packetTotals: (id) => peerMetrics?.totals(id),
    onMemberLeft: (deviceId, reason) => discord.memberLeft(deviceId, reason),
    onControlSnapshot: () => netcheck?.serversMayHaveChanged(),
    stateDir: opts.stateDir,
    log,
    state,
    store: new StateRepo(db),
    defaultControlUrl: () => controlUrl,
    interfaceName: () => opts.interfaceName ?? state.settings.interfaceName,
    fastPath: opts.fastPath,
    lan,
    ...(exposure && { exposure }),
    onControlClient: (c) => servers?.setChannel(c),
  });
  partyRef = party;
  servers = new ServerBrowser({
    log,
    games,
    settings: () => state.settings,
    party: () => party.current(),
    peers: () => party.peers(),
    favorites: new FavoritesRepo(db),
    publish: (e) => state.events.publish({ server: e }),
    targetsChanged: () => void lan.targetsChanged(),
  });
  const sb = servers;
  // Who in the party plays what: their helpers' announcements, for the sessions here.
  sb.partyGames.on('changed', () => recorder.members(membersPlaying(sb.partyGames.announced(), new Map((party.current()?.members ?? []).map((m) => [m.deviceId, m.name])))));
  state.settingsSaved.subscribe(() => sb.settingsChanged());
  state.inParty = () => party.inParty();
  peerMetrics = new PeerMetrics({
    source: { inputs: () => party.metricsInputs(), fastPathCounters: () => party.fastPathCounters(), liveProbing: (on) => party.setLiveProbing(on) },
    log: log.child({ part: 'peer-metrics' }),
    onSamples: (samples) => {
      peerHistory.add(samples);
      recorder.samples(samples);
      // Only Watch streams that asked for metrics read these (and they hold peerMetrics.watch()): at rest,
      // nobody watching, the per-second protobuf copies were garbage for nobody.
      if (peerMetrics?.watched() === true) state.events.publish({ peerMetrics: { peers: samples.map(toProtoPeerSample) } });
    },
  });
  const pm = peerMetrics;
  netcheck = new Netchecker({
    stunServers: () => party.stunServers(),
    run: (stunServers) => runNetcheck({ stunServers }),
    portMapping: () => party.portMappingProtocols(),
    relays: () => party.relayLatencies(),
    onReport: (r) => state.events.publish({ natReport: toProtoNatReport(r) }),
    log: log.child({ part: 'netcheck' }),
  });
  const nc = netcheck;
  const netmon = new NetMon({
    excludeInterfaces: [opts.interfaceName ?? state.settings.interfaceName],
    onChange: (before, after) => {
      log.info('network changed', { before, after });
      party.networkChanged();
      nc.networkChanged();
    },
  });
  const partySnapshot = (): WatchEvent[] => {
    const report = nc.latest();
    return [
      { party: { party: party.current() } },
      ...party.peers().map((peer) => ({ peer: { peer, removed: false } })),
      { lan: lan.stats() },
      ...(report ? [{ natReport: toProtoNatReport(report) }] : []),
      ...sb.snapshotEvents(),
      ...games.detector.running().map((d) => ({ gameDetection: toProtoDetection(d, games.catalog.get(d.profileId)?.name ?? d.profileId, true) })),
    ];
  };

  let lastPrune = 0;
  const sampler = new MetricsSampler({
    reader: process.platform === 'linux' ? procReader() : systemReader(),
    log,
    liveIntervalMs: 1000,
    idleIntervalMs: HISTORY_STEP_SECONDS * 1000,
    onSample: (s) => {
      history.add(s);
      if (s.atMs - lastPrune > 3600_000) {
        history.pruneOlderThan(s.atMs - state.settings.metricsRetentionHours * 3600_000);
        lastPrune = s.atMs;
      }
      state.events.publish({ metrics: toProtoSample(s) });
    },
  });
  sampler.start();

  const metricsEndpoint = { registry: prometheusRegistry({ peers: () => pm.latest(), magic: () => party.magicCounters(), lan: () => lan.stats(), gameSessions: () => ({ ended: recorder.endedCounts(), playing: recorder.playing() }) }) };
  let grpcTarget = '';
  // Phone access (helper/remote): off until the desktop turns it on.
  const remote = new RemoteAccess({
    stateDir: opts.stateDir,
    store: new StateRepo(db),
    devices: new PairedDevicesRepo(db),
    grpcTarget: () => grpcTarget,
    staticDir: opts.pwaDir,
    policy: access.policy,
    metrics: metricsEndpoint,
    excludeInterfaces: () => [opts.interfaceName ?? state.settings.interfaceName],
    log: log.child({ part: 'remote' }),
  });

  const grpc = await startGrpcServer({
    host: opts.host,
    port: opts.grpcPort,
    token,
    authorize: access.authorizeGrpc,
    log: log.child({ part: 'grpc' }),
    services: [
      { definition: statusDefinition, handlers: statusHandlers(state, () => lan.stats()), mutating: new Set() },
      { definition: settingsDefinition, handlers: settingsHandlers(state), mutating: settingsMutating },
      {
        definition: metricsDefinition,
        handlers: metricsHandlers({ current: () => sampler.current(), history, peerHistory, retentionHours: () => state.settings.metricsRetentionHours }),
        mutating: new Set(),
      },
      {
        definition: watchDefinition,
        handlers: watchHandlers({ state, latestSample: () => sampler.current(), holdLiveSampling: () => {
            const a = sampler.watch();
            const b = pm.watch();
            return () => {
              a();
              b();
            };
          }, partySnapshot, shutdown: shutdown.signal }),
        mutating: new Set(),
      },
      { definition: partyDefinition, handlers: partyHandlers(party), mutating: partyMutating },
      { definition: peerDefinition, handlers: peerHandlers(party), mutating: peerMutating },
      { definition: networkDefinition, handlers: networkHandlers(nc), mutating: networkMutating },
      { definition: discordDefinition, handlers: discordHandlers(discord), mutating: discordMutating },
      { definition: serverBrowserDefinition, handlers: sb.handlers(), mutating: serverBrowserMutating },
      { definition: gameDefinition, handlers: gameHandlers(games.catalog, games.detector, gameSessions), mutating: gameMutating },
      { definition: remoteAccessDefinition, handlers: remoteAccessHandlers(remote), mutating: new Set(), needs: remoteAccessNeeds },
      { definition: remotePairingDefinition, handlers: remotePairingHandlers(remote), mutating: new Set(), needs: remotePairingNeeds },
    ],
  });
  state.grpcPort = grpc.port;
  grpcTarget = `${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${grpc.port}`;
  access.setGrpcPort(grpc.port);

  let http;
  try {
    http = await startHttpServer({
      host: opts.host,
      port: opts.httpPort,
      grpcTarget,
      staticDir: opts.pwaDir,
      allowedHosts: opts.allowedHosts,
      token,
      door: access.httpDoor,
      log: log.child({ part: 'http' }),
      metrics: metricsEndpoint,
    });
  } catch (err) {
    nc.close();
    games.stop();
    await grpc.close(0);
    await control?.close();
    sampler.stop();
    db.close();
    throw err;
  }
  state.httpPort = http.port;
  if (!opts.pwaDir) log.warn('the PWA is not built, so http://localhost serves only the API: run `npm run build`');
  await remote.start();
  await lan.start();
  sb.start();
  await party.start();
  pm.start();
  nc.start();
  netmon.start();

  return {
    grpcPort: grpc.port,
    httpPort: http.port,
    async stop() {
      shutdown.abort();
      sb.stop();
      games.stop();
      netmon.stop();
      nc.close();
      await remote.close();
      await http.close();
      await grpc.close(2000);
      pm.stop();
      await party.close();
      discord.close();
      await control?.close();
      sampler.stop();
      recorder.close();
      history.flush();
      peerHistory.flush();
      db.close();
    },
  };
}
