import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { standbyRef } from '../../src/postgres/replication.js';
import {
  chooseBackupSource,
  rankStandbys,
  replicationAlerts,
  senderFor,
  standbyStates,
  type PrimaryReplication,
  type ReplicationSettings,
  type SenderRow,
  type StandbyReading,
  type StandbySelf,
} from '../../src/lib/replication.js';

const settings: ReplicationSettings = {
  backupFrom: 'prefer-standby',
  lagLimitBytes: 1048576,
  alertLagBytes: 16 * 1048576,
  alertLagSeconds: 300,
};
const sender = (name: string, over: Partial<SenderRow> = {}): SenderRow => ({
  applicationName: name,
  clientAddr: '10.0.0.2',
  state: 'streaming',
  sentLsn: '0/5000000',
  writeLsn: '0/5000000',
  flushLsn: '0/5000000',
  replayLsn: '0/5000000',
  replayLagBytes: 0,
  replayLagSeconds: null,
  ...over,
});
const self = (over: Partial<StandbySelf> = {}): StandbySelf => ({
  inRecovery: true,
  receiveLsn: '0/5000000',
  replayLsn: '0/5000000',
  lastReplayAt: '2026-12-01T00:00:00Z',
  secondsSinceReplay: 3600,
  replayPaused: false,
  receiverStatus: 'streaming',
  ...over,
});
const reading = (name: string, s?: StandbySelf, error?: string): StandbyReading => ({
  name,
  host: `${name}.db`,
  port: 5432,
  ...(s ? { self: s } : { error: error ?? 'cluster "main/x" (x:5432) is unreachable: ECONNREFUSED' }),
});

describe('standbyStates', () => {
  it('a streaming standby within the limit is eligible; lag seconds 0 when caught up on an idle primary', () => {
    const primary: PrimaryReplication = { currentLsn: '0/5000000', senders: [sender('a')] };
    const [a] = standbyStates(primary, [reading('a', self())], settings);
    expect(a).toMatchObject({ streaming: true, lagBytes: 0, lagSeconds: 0, problems: [], eligible: true });
  });

  it('says why each standby is left out', () => {
    const primary: PrimaryReplication = {
      currentLsn: '0/9000000',
      senders: [
        sender('lagging', { replayLagBytes: 2 * 1048576, replayLagSeconds: 4 }),
        sender('paused', { replayLagBytes: 64 * 1048576 }),
        sender('catching', { state: 'catchup' }),
      ],
    };
    const states = standbyStates(
      primary,
      [
        reading('lagging', self()),
        reading('paused', self({ replayPaused: true, pauseState: 'paused' })),
        reading('catching', self()),
        reading('gone'),
        reading('promoted', self({ inRecovery: false, receiverStatus: null })),
        reading('detached', self({ receiverStatus: null, replayLsn: '0/8000000' })),
      ],
      settings,
    );
    const problems = Object.fromEntries(states.map((s) => [s.name, s.problems]));
    expect(problems).toEqual({
      lagging: ['replay 2.0 MiB behind, over the lag limit of 1.0 MiB'],
      paused: ['replay paused (paused)'],
      catching: ['not streaming: the primary reports catchup'],
      gone: [
        'unreachable: cluster "main/x" (x:5432) is unreachable: ECONNREFUSED',
        'not streaming: not in the primary’s pg_stat_replication',
      ],
      promoted: ['not in recovery (promoted?)'],
      detached: ['not streaming: not in the primary’s pg_stat_replication'],
    });
    // Without the primary's row the lag comes from the standby's replay position; seconds from its last replay.
    expect(states.find((s) => s.name === 'detached')).toMatchObject({ lagBytes: 0x1000000, lagSeconds: 3600 });
    expect(states.every((s) => !s.eligible)).toBe(true);
    expect(chooseBackupSource(states, 'prefer-standby')).toMatchObject({ role: 'primary' });
    expect(chooseBackupSource(states, 'standby')).toMatchObject({
      role: 'none',
      reason: expect.stringContaining('lagging: replay 2.0 MiB behind'),
    });
  });

  it('matches a sender by application_name, else by a unique client address', () => {
    const rows = [sender('walreceiver', { clientAddr: '10.0.0.7' }), sender('walreceiver', { clientAddr: '10.0.0.8' })];
    expect(senderFor(rows, { name: 'b', host: '10.0.0.8' })?.clientAddr).toBe('10.0.0.8');
    expect(
      senderFor([...rows, sender('x', { clientAddr: '10.0.0.8' })], { name: 'b', host: '10.0.0.8' }),
    ).toBeUndefined();
    expect(senderFor(rows, { name: 'b', host: 'db2' })).toBeUndefined();
  });

  it('with the primary unreadable, the lag is unknown and no standby is chosen', () => {
    const [a] = standbyStates(undefined, [reading('a', self())], settings);
    expect(a).toMatchObject({ streaming: true, lagBytes: null, eligible: false });
    expect(a!.problems).toEqual(['lag unknown (the primary could not be read)']);
  });
});

describe('choosing a source', () => {
  const primary: PrimaryReplication = {
    currentLsn: '0/5000000',
    senders: [sender('b', { replayLagBytes: 4096 }), sender('a', { replayLagBytes: 4096 }), sender('c')],
  };
  const states = standbyStates(
    primary,
    ['a', 'b', 'c'].map((n) => reading(n, self())),
    settings,
  );

  it('least lag first, then by name; primary when backupFrom says so', () => {
    expect(rankStandbys(states).map((s) => s.name)).toEqual(['c', 'a', 'b']);
    expect(chooseBackupSource(states, 'prefer-standby')).toEqual({ role: 'standby', standby: 'c', lagBytes: 0 });
    expect(chooseBackupSource(states, 'primary')).toMatchObject({ role: 'primary' });
    expect(chooseBackupSource([], 'prefer-standby')).toMatchObject({
      role: 'primary',
      reason: 'no standby can serve a backup (no standbys configured)',
    });
  });
});

describe('replicationAlerts', () => {
  it('one alert per standby and kind, keyed so a changing lag does not notify again', () => {
    const primary: PrimaryReplication = {
      currentLsn: '1/0',
      senders: [
        sender('paused', { replayLagBytes: 32 * 1048576, replayLagSeconds: 12 }),
        sender('slow', { replayLagSeconds: 400 }),
      ],
    };
    const states = standbyStates(
      primary,
      [
        reading('paused', self({ replayPaused: true })),
        reading('slow', self()),
        reading('gone'),
        reading('promoted', self({ inRecovery: false, receiverStatus: null })),
        reading('unlisted', self()),
      ],
      settings,
    );
    const alerts = replicationAlerts('main', { primary, standbys: states }, settings);
    expect(alerts.map((a) => a.key)).toEqual([
      'standby-replay-paused:paused',
      'standby-lag:paused',
      'standby-lag:slow',
      'standby-unreachable:gone',
      'standby-not-streaming:gone',
      'standby-promoted:promoted',
      'standby-not-streaming:unlisted',
      'standby-lag:unlisted',
    ]);
    expect(alerts[1]!.message).toBe(
      'standby "paused" of main (paused.db:5432): replay is 32.0 MiB (12 s) behind the primary (alert thresholds 16.0 MiB, 300 s: replication.alertLagBytes, alertLagSeconds)',
    );
  });
});

describe('standbyRef', () => {
  const cluster = parseConfig({
    clusters: { main: { host: 'db1', passwordEnv: 'MAIN_PW', sslmode: 'require', dataDirectory: '/srv/pg' } },
    repositories: { local: { type: 'local', path: '/srv/pgwarden' } },
  }).clusters.main!;
  it("connects with the cluster's user, password source and sslmode unless the standby names its own", () => {
    const same = standbyRef({ name: 'main', config: cluster }, { name: 'r1', host: 'db2', port: 5433 });
    expect(same.name).toBe('main/r1');
    expect(same.config).toMatchObject({
      host: 'db2',
      port: 5433,
      user: 'postgres',
      passwordEnv: 'MAIN_PW',
      sslmode: 'require',
    });
    expect(same.config.dataDirectory).toBeUndefined();
    const own = standbyRef(
      { name: 'main', config: cluster },
      { name: 'r2', host: 'db3', port: 5432, user: 'monitor', passfile: '/etc/pgwarden/pgpass' },
    );
    expect(own.config).toMatchObject({ user: 'monitor', passfile: '/etc/pgwarden/pgpass', passwordEnv: undefined });
  });
});
