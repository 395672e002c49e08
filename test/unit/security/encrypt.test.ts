import { randomBytes } from 'node:crypto';
import { flattenedDecrypt, FlattenedEncrypt } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { createIntegration, createMessage, DeadLetterHeaders, from, RouteDefinitionError, silentLogger, type Integration, type Message, type RouteSource } from '../../../facade/index.ts';
import { decryptBody, encryptBody, envelopeContext, ENVELOPE_CONTENT_TYPE, isEnvelope, Keyring, type Envelope } from '../../../facade/security/index.ts';
import { TestKit } from '../../../facade/testing/index.ts';

const k1 = randomBytes(32);
const k2 = randomBytes(32);
const keys = new Keyring([{ id: 'kek-1', key: k1 }]);

interface Patient {
  readonly patient: { readonly name: string; readonly ward: number };
  readonly card: string;
  readonly visits: readonly number[];
}
const record: Patient = { patient: { name: 'Ada Lovelace', ward: 7 }, card: '4111-1111-1111-1111', visits: [1, 2] };

describe('encrypt / decrypt steps in routes over memory channels', () => {
  let app: Integration | undefined;
  afterEach(async () => {
    await app?.stop({ drainTimeoutMs: 1_000 });
    app = undefined;
  });

  async function start(...routes: RouteSource[]): Promise<TestKit> {
    app = createIntegration({ routes, logger: silentLogger });
    await app.start();
    return new TestKit(app);
  }

  it('round-trips a JSON body: the wire carries an envelope, the far side gets the body, contentType restored', async () => {
    const kit = await start(
      from<Patient>('memory:plain').encrypt({ keys }).to('memory:sealed'),
      from('memory:sealed').deadLetterChannel('memory:dlq').decrypt<Patient>({ keys }).to('memory:clear'),
    );
    const wire = kit.mock<Envelope>('memory:sealed');
    const clear = kit.mock<Patient>('memory:clear');
    const dlq = kit.mock('memory:dlq');
    await kit.send('memory:plain', record, { contentType: 'application/json', schema: 'patient@1' });
    const [sealed] = await wire.expect(1);
    expect(isEnvelope(sealed!.body)).toBe(true);
    expect(sealed!.headers.contentType).toBe(ENVELOPE_CONTENT_TYPE);
    expect(sealed!.headers.schema).toBeUndefined();
    expect(JSON.stringify(sealed!.body)).not.toContain('Lovelace');
    const [out] = await clear.expect(1);
    expect(out!.body).toEqual(record);
    expect(out!.id).toBe(sealed!.id);
    expect(out!.headers.contentType).toBe('application/json');
    expect(dlq.received).toEqual([]);
  });

  it('round-trips a Buffer body and a string body as what they were', async () => {
    const kit = await start(from('memory:plain').encrypt({ keys }).to('memory:sealed'), from('memory:sealed').decrypt({ keys }).to('memory:clear'));
    const clear = kit.mock('memory:clear');
    const bytes = randomBytes(300);
    await kit.sendAll('memory:plain', [bytes, 'plain text ü']);
    const out = await clear.expect(2);
    expect(Buffer.isBuffer(out[0]!.body)).toBe(true);
    expect(Buffer.compare(out[0]!.body as Buffer, bytes)).toBe(0);
    expect(out[1]!.body).toBe('plain text ü');
  });

  it('decrypts a whole-body envelope that arrives as JSON text or bytes (as a transport hands it over)', async () => {
    const kit = await start(from('memory:sealed').decrypt({ keys }).to('memory:clear'));
    const clear = kit.mock('memory:clear');
    const a = encryptBody(createMessage({ n: 1 }), { keys });
    const b = encryptBody(createMessage({ n: 2 }), { keys });
    await kit.sendMessages('memory:sealed', [
      { ...a, body: JSON.stringify(a.body) },
      { ...b, body: Buffer.from(JSON.stringify(b.body)) },
    ]);
    expect((await clear.expect(2)).map((m) => m.body)).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it('encrypts selected fields only (JSON pointers), each with its own envelope, and restores them', async () => {
    const fields = ['/patient/name', '/card', '/visits/1', '/absent'];
    const kit = await start(
      from<Patient>('memory:plain').encrypt({ keys, fields }).to('memory:sealed'),
      from('memory:sealed').deadLetterChannel('memory:dlq').decrypt<Patient>({ keys, fields }).to('memory:clear'),
    );
    const wire = kit.mock<Record<string, unknown>>('memory:sealed');
    const clear = kit.mock<Patient>('memory:clear');
    await kit.send('memory:plain', record);
    const [sealed] = await wire.expect(1);
    const body = sealed!.body as { patient: { name: unknown; ward: number }; card: unknown; visits: unknown[] };
    expect(body.patient.ward).toBe(7);
    expect(body.visits[0]).toBe(1);
    expect([body.patient.name, body.card, body.visits[1]].every(isEnvelope)).toBe(true);
    expect('absent' in body).toBe(false);
    const serialised = JSON.stringify(body);
    expect(serialised).not.toContain('Lovelace');
    expect(serialised).not.toContain('4111');
    const [out] = await clear.expect(1);
    expect(out!.body).toEqual(record);
  });

  it('never mutates the message it encrypts (bodies are shared, read-only)', () => {
    const message = createMessage(structuredClone(record));
    const before = structuredClone(message.body);
    const sealed = encryptBody(message, { keys, fields: ['/patient/name'] });
    expect(message.body).toEqual(before);
    expect(decryptBody(sealed, { keys, fields: ['/patient/name'] }).body).toEqual(before);
  });

  it('rotation: what the old key encrypted still decrypts with the rotated keyring (retiring key), new messages use the new key', async () => {
    let current = keys;
    const kit = await start(
      from('memory:plain').encrypt({ keys: () => current }).to('memory:sealed'),
      from('memory:sealed').deadLetterChannel('memory:dlq').decrypt({ keys: () => keys.rotate({ id: 'kek-2', key: k2 }) }).to('memory:clear'),
    );
    const wire = kit.mock<Envelope>('memory:sealed');
    const clear = kit.mock('memory:clear');
    await kit.send('memory:plain', { before: true });
    await wire.expect(1);
    current = keys.rotate({ id: 'kek-2', key: k2 });
    await kit.send('memory:plain', { after: true });
    const sealed = await wire.expect(2);
    const kids = sealed.map((m) => (JSON.parse(Buffer.from(m.body.protected, 'base64url').toString()) as { kid: string }).kid);
    expect(kids).toEqual(['kek-1', 'kek-2']);
    expect((await clear.expect(2)).map((m) => m.body)).toEqual([{ before: true }, { after: true }]);
  });

  it('a plain value where the decryptor expects ciphertext is dead-lettered, not passed on (no downgrade to plaintext)', async () => {
    let processed = 0;
    const kit = await start(
      from('memory:sealed')
        .deadLetterChannel('memory:dlq')
        .decrypt({ keys, fields: ['/card'] })
        .process(() => {
          processed += 1;
        })
        .to('memory:clear'),
    );
    const dlq = kit.mock('memory:dlq');
    const clear = kit.mock('memory:clear');
    await kit.send('memory:sealed', { card: '4111-1111-1111-1111' });
    const [dead] = await dlq.expect(1);
    expect(dead!.headers[DeadLetterHeaders.code]).toBe('ENVELOPE_MALFORMED');
    expect(String(dead!.headers[DeadLetterHeaders.error])).toContain('/card');
    expect(processed).toBe(0);
    expect(clear.received).toEqual([]);
  });

  it('refuses bad keys and bad pointers when the route is declared', () => {
    expect(() => from('memory:a').encrypt({ keys: new Keyring([{ id: 'short', key: randomBytes(16) }]) })).toThrow(RouteDefinitionError);
    expect(() => from('memory:a').encrypt({ keys, fields: ['card'] })).toThrow(/JSON pointer/);
    expect(() => from('memory:a').encrypt({ keys, fields: ['/a', '/a/b'] })).toThrow(/overlap/);
    expect(() => from('memory:a').decrypt({ keys, fields: ['/__proto__/x'] })).toThrow(/prototype/);
  });

  it('a body that is neither bytes, text nor JSON fails permanently at encryption', () => {
    expect(() => encryptBody(createMessage(undefined), { keys })).toThrow(expect.objectContaining({ code: 'ENCRYPT_UNENCODABLE', permanent: true }));
  });
});

describe('the envelope is a standard JWE (flattened JSON serialization, A256GCMKW + A256GCM)', () => {
  it('jose decrypts what encryptBody made, given the AAD context', async () => {
    const message = createMessage({ secret: 42 });
    const sealed = encryptBody(message, { keys }) as Message<Envelope>;
    const { plaintext, protectedHeader } = await flattenedDecrypt({ ...sealed.body, aad: envelopeContext(message.id, '') }, k1);
    expect(JSON.parse(new TextDecoder().decode(plaintext))).toEqual({ secret: 42 });
    expect(protectedHeader).toMatchObject({ alg: 'A256GCMKW', enc: 'A256GCM', kid: 'kek-1', v: 1, kind: 'json' });
  });

  it('decryptBody opens what jose made with the same header and AAD', async () => {
    const message = createMessage<unknown>(undefined);
    const jwe = await new FlattenedEncrypt(new TextEncoder().encode('"from jose"'))
      .setProtectedHeader({ alg: 'A256GCMKW', enc: 'A256GCM', kid: 'kek-1', v: 1, kind: 'json' })
      .setAdditionalAuthenticatedData(Buffer.from(envelopeContext(message.id, '/note'), 'base64url'))
      .encrypt(k1);
    const clear = decryptBody({ ...message, body: { note: jwe } }, { keys, fields: ['/note'] });
    expect(clear.body).toEqual({ note: 'from jose' });
  });
});
