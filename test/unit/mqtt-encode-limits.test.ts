import { createServer, type Server, type Socket } from 'node:net';
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { MqttTransport, MqttUnencodableError } from '../../adapters/mqtt/index.ts';
import { assertPublishable, encodeMessage, type PublishLimits } from '../../adapters/mqtt/message-codec.ts';
import { encodePublish } from '../../adapters/mqtt/publish-encoder.ts';
import { publishTopic } from '../../adapters/mqtt/topic-pattern.ts';
import { createMessage, PartialPublishError, UnencodableMessageError, parseEndpoint, type Headers, type Message } from '../../src/core/index.ts';

// A message that cannot be a valid PUBLISH fails alone, before the connection sees it: each MQTT
// limit at its edge — the last value that passes, the first that fails.

const MAX = 65_535;
const limits: PublishLimits = { protocolVersion: 5, qos: 1, maxPacketBytes: 268_435_455 };

/** Encodes and checks a message as `MqttTransport.publish` does. */
function check(message: Message, { topic = 't', mapping = 'all', ...rest }: { topic?: string; mapping?: 'all' | 'none' } & Partial<PublishLimits> = {}): void {
  const all = { ...limits, ...rest };
  assertPublishable(publishTopic(topic), encodeMessage(message, all.protocolVersion, mapping), all);
}
const withHeaders = (headers: Headers, body: unknown = 1): Message => ({ id: 'm-1', headers, body });
const unencodable = (run: () => void, problem: RegExp): void => {
  expect(run).toThrow(MqttUnencodableError);
  expect(run).toThrow(problem);
};

describe('mqtt publish limits: topic (publishTopic)', () => {
  it('65,535 bytes of UTF-8 pass, 65,536 fail — counted in bytes, not characters', () => {
    expect(publishTopic('a'.repeat(MAX))).toHaveLength(MAX);
    unencodable(() => publishTopic('a'.repeat(MAX + 1)), /65536 bytes of UTF-8, over MQTT's 65,535/);
    expect(publishTopic(`${'é'.repeat(32_767)}a`)).toHaveLength(32_768); // 65,535 bytes
    unencodable(() => publishTopic('é'.repeat(32_768)), /65536 bytes/);
  });

  it.each([
    ['a wildcard +', 'a/+/b', /wildcards/],
    ['a wildcard #', 'a/#', /wildcards/],
    ['empty', '', /empty topic/],
    ['empty after the shared prefix', '$share/g/', /empty topic/],
    ['NUL', 'a/\u0000', /control characters/],
    ['a newline', 'a/b\nc', /control characters/],
    ['a C1 control', 'a/\u0085', /control characters/],
    ['a non-character', 'a/\uffff', /non-characters/],
    ['a lone surrogate', 'a/\ud800', /lone surrogates/],
  ])('refuses %s', (_label, topic, problem) => {
    unencodable(() => publishTopic(topic), problem);
  });

  it('takes any other Unicode (emoji, accents) and drops the shared prefix', () => {
    expect(publishTopic('$share/g/sensors/😀/é')).toBe('sensors/😀/é');
  });
});

describe('mqtt publish limits: properties (assertPublishable)', () => {
  it('a user property name of 65,535 bytes passes, 65,536 fails', () => {
    expect(() => check(withHeaders({ ['n'.repeat(MAX)]: 'v' }))).not.toThrow();
    unencodable(() => check(withHeaders({ ['n'.repeat(MAX + 1)]: 'v' })), /user property name 'n{80}… \(65536 chars\)' is 65536 bytes/);
  });

  it('a user property value of 65,535 bytes passes, 65,536 fails', () => {
    expect(() => check(withHeaders({ site: 'v'.repeat(MAX) }))).not.toThrow();
    unencodable(() => check(withHeaders({ site: 'v'.repeat(MAX + 1) })), /user property 'site' is 65536 bytes/);
    unencodable(() => check(withHeaders({ site: 'é'.repeat(32_768) })), /65536 bytes/);
  });

  it('a user property with a control character or non-character fails (brokers drop the connection); a lone surrogate is sent as U+FFFD', () => {
    unencodable(() => check(withHeaders({ 'x-interchange-error': 'line 1\nline 2' })), /user property 'x-interchange-error' contains a control character/);
    unencodable(() => check(withHeaders({ site: 'a\u0000b' })), /control character/);
    unencodable(() => check(withHeaders({ 'a\tb': 'v' })), /user property name/);
    unencodable(() => check(withHeaders({ site: '\ufdd0' })), /non-character/);
    expect(() => check(withHeaders({ site: 'half \ud83d' }))).not.toThrow();
  });

  it('content type: 65,535 bytes pass, 65,536 fail', () => {
    expect(() => check(withHeaders({ contentType: 'c'.repeat(MAX) }))).not.toThrow();
    unencodable(() => check(withHeaders({ contentType: 'c'.repeat(MAX + 1) })), /content type \(header contentType\) is 65536 bytes/);
  });

  it('response topic: 65,535 bytes pass, 65,536 fail; no wildcards, not empty', () => {
    expect(() => check(withHeaders({ replyTo: 'r'.repeat(MAX) }), { mapping: 'none' })).not.toThrow();
    unencodable(() => check(withHeaders({ replyTo: 'r'.repeat(MAX + 1) }), { mapping: 'none' }), /response topic \(header replyTo\) is 65536 bytes/);
    unencodable(() => check(withHeaders({ replyTo: 'replies/+' }), { mapping: 'none' }), /must be a topic name/);
    unencodable(() => check(withHeaders({ replyTo: '' }), { mapping: 'none' }), /must be a topic name/);
  });

  it('correlation data: 65,535 bytes pass, 65,536 fail', () => {
    expect(() => check(withHeaders({ correlationId: 'c'.repeat(MAX) }), { mapping: 'none' })).not.toThrow();
    unencodable(() => check(withHeaders({ correlationId: 'c'.repeat(MAX + 1) }), { mapping: 'none' }), /correlation data \(header correlationId\) is 65536 bytes/);
  });

  it('expiresAt: bounded to the uint32 Message Expiry Interval; not a finite number fails', () => {
    expect(encodeMessage(withHeaders({ expiresAt: 1e300 }), 5).properties?.messageExpiryInterval).toBe(0xffffffff);
    expect(() => check(withHeaders({ expiresAt: 1e300 }))).not.toThrow();
    unencodable(() => encodeMessage(withHeaders({ expiresAt: Number.NaN }), 5), /expiresAt must be a finite number/);
    unencodable(() => encodeMessage(withHeaders({ expiresAt: 'tomorrow' as unknown as number }), 5, 'none'), /expiresAt must be a finite number \(epoch ms\), got 'tomorrow'/);
  });

  it('a body JSON cannot serialize fails', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    unencodable(() => encodeMessage(withHeaders({}, cyclic), 5), /cannot be serialized as JSON/);
    unencodable(() => encodeMessage(withHeaders({}, { n: 1n }), 4), /cannot be serialized as JSON/);
  });

  it('MQTT 3.1.1 has no properties: only the topic and the packet size (envelope included) count', () => {
    expect(() => check(withHeaders({ note: 'a\nb' }), { protocolVersion: 4 })).not.toThrow();
  });
});

describe('mqtt publish limits: packet size', () => {
  /** The exact size of the PUBLISH the adapter writes for `message` (encoded as `check` encodes it). */
  function packetSize(message: Message, protocolVersion: 4 | 5, qos: 0 | 1 | 2): number {
    const { payload, properties } = encodeMessage(message, protocolVersion);
    const packet = { cmd: 'publish', topic: 't/x', payload, qos, messageId: qos > 0 ? 1 : undefined, dup: false, retain: false, properties } as IPublishPacket;
    const written = encodePublish(packet, protocolVersion) as Buffer;
    expect(written.length).toBe(mqttPacket.generate(packet, { protocolVersion }).length); // the same bytes mqtt-packet writes
    return written.length;
  }

  it.each([
    [5, 1],
    [5, 0],
    [4, 2],
  ] as const)('MQTT %i QoS %i: a packet of exactly maxPacketBytes passes, one byte more fails', (protocolVersion, qos) => {
    const message = createMessage({ reading: 'x'.repeat(200) }, { headers: { tenant: 'acme' } });
    const size = packetSize(message, protocolVersion, qos);
    expect(() => check(message, { topic: 't/x', protocolVersion, qos, maxPacketBytes: size })).not.toThrow();
    unencodable(() => check(message, { topic: 't/x', protocolVersion, qos, maxPacketBytes: size - 1 }), new RegExp(`would be ${size} bytes, over the maximum packet size of ${size - 1}`));
  });

  it('the error is permanent, an UnencodableMessageError with a stable code', () => {
    try {
      check(createMessage('x'), { maxPacketBytes: 10 });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(UnencodableMessageError);
      expect(error).toMatchObject({ code: 'MQTT_UNENCODABLE', permanent: true, name: 'MqttUnencodableError' });
    }
  });
});

describe('MqttTransport.publish: an unencodable message fails alone', () => {
  let server: Server | undefined;
  const transports: MqttTransport[] = [];
  afterEach(async () => {
    for (const transport of transports.splice(0)) await transport.close();
    await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
    server = undefined;
  });

  /** A minimal MQTT 5 broker: CONNACK (with `maximumPacketSize` if given), PUBACK for each PUBLISH, which it records. */
  async function fakeBroker(maximumPacketSize?: number): Promise<{ url: string; published: IPublishPacket[] }> {
    const published: IPublishPacket[] = [];
    server = createServer((socket: Socket) => {
      const parser = mqttPacket.parser({ protocolVersion: 5 });
      parser.on('packet', (packet: Packet) => {
        if (packet.cmd === 'connect') socket.write(mqttPacket.generate({ cmd: 'connack', sessionPresent: false, reasonCode: 0, ...(maximumPacketSize === undefined ? {} : { properties: { maximumPacketSize } }) }, { protocolVersion: 5 }));
        else if (packet.cmd === 'publish') {
          published.push(packet);
          if (packet.qos === 1) socket.write(mqttPacket.generate({ cmd: 'puback', messageId: packet.messageId as number, reasonCode: 0 }, { protocolVersion: 5 }));
        } else if (packet.cmd === 'pingreq') socket.write(mqttPacket.generate({ cmd: 'pingresp' }));
      });
      socket.on('data', (chunk: Buffer) => parser.parse(chunk));
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => (server as Server).listen(0, '127.0.0.1', resolve));
    const address = (server as Server).address() as { port: number };
    return { url: `mqtt://127.0.0.1:${address.port}`, published };
  }

  async function connected(url: string, maxPacketBytes?: number): Promise<MqttTransport> {
    const transport = new MqttTransport({ url, persistentSession: false, connectTimeoutMs: 2_000, ...(maxPacketBytes === undefined ? {} : { maxPacketBytes }) });
    transports.push(transport);
    await transport.connect();
    return transport;
  }

  it("the broker's Maximum Packet Size (CONNACK) bounds what is sent: the others are confirmed, PartialPublishError names the one", async () => {
    const broker = await fakeBroker(300);
    const transport = await connected(broker.url);
    const small = createMessage({ n: 1 });
    const big = createMessage({ n: 2, pad: 'x'.repeat(400) });
    const failure = await transport.publish(parseEndpoint('mqtt:limits/a?qos=1'), [small, big, createMessage({ n: 3 })]).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(PartialPublishError);
    const { failures } = failure as PartialPublishError;
    expect([...failures.keys()]).toEqual([1]);
    expect(failures.get(1)).toBeInstanceOf(MqttUnencodableError);
    expect(failures.get(1)?.message).toMatch(/over the maximum packet size of 300/);
    expect(broker.published.map((packet) => JSON.parse(packet.payload.toString()) as unknown)).toEqual([{ n: 1 }, { n: 3 }]);
  });

  it('option maxPacketBytes bounds it too (the lesser of the two wins); templated topics fail per message', async () => {
    const broker = await fakeBroker(10_000);
    const transport = await connected(broker.url, 200);
    const messages = [createMessage({ n: 1 }, { headers: { room: 'r1' } }), createMessage({ n: 2, pad: 'x'.repeat(300) }, { headers: { room: 'r2' } }), createMessage({ n: 3 }, { headers: { room: 'a\nb' } }), createMessage({ n: 4 })];
    const failure = (await transport.publish(parseEndpoint('mqtt:limits/{room}?qos=1'), messages).catch((error: unknown) => error)) as PartialPublishError;
    expect(failure).toBeInstanceOf(PartialPublishError);
    expect([...failure.failures.keys()]).toEqual([1, 2, 3]);
    expect(failure.failures.get(1)?.message).toMatch(/maximum packet size of 200/);
    expect(failure.failures.get(2)?.message).toMatch(/control characters/);
    expect(failure.failures.get(3)?.message).toMatch(/no header or body field for \{room\}/); // a template it cannot fill
    for (const error of failure.failures.values()) expect(error).toBeInstanceOf(MqttUnencodableError);
    expect(broker.published.map((packet) => packet.topic)).toEqual(['limits/r1']);
  });

  it('a fixed topic no broker takes fails the whole call', async () => {
    const broker = await fakeBroker();
    const transport = await connected(broker.url);
    await expect(transport.publish(parseEndpoint('mqtt:limits/+?qos=1'), [createMessage(1)])).rejects.toBeInstanceOf(MqttUnencodableError);
    expect(broker.published).toEqual([]);
  });
});
