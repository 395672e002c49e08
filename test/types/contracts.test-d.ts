import { describe, expectTypeOf, it } from 'vitest';
import { defineUpcaster, from, type ContractName, type ContractType, type Message } from '../../facade/index.ts';
import type { BackendReadingV1, DeviceTelemetryV1, DeviceTelemetryV2 } from '../../schemas/types.generated.ts';

const toBackend = (m: Message<DeviceTelemetryV1>) => ({
  deviceId: m.body.deviceId,
  timestamp: Date.parse(m.body.ts),
  temperatureC: m.body.temperature,
  temperatureF: (m.body.temperature * 9) / 5 + 32,
  humidity: m.body.humidity,
  battery: m.body.battery,
});

describe('typed contracts', () => {
  it('knows the shipped contracts by subject@version', () => {
    expectTypeOf<ContractName>().toEqualTypeOf<'backend.reading@1' | 'device.telemetry@1' | 'device.telemetry@2' | 'order.placed@1' | 'parcel.scanned@1'>();
    expectTypeOf<ContractType<'device.telemetry@1'>>().toEqualTypeOf<DeviceTelemetryV1>();
  });

  it('types the body downstream of .validate(contract) as the contract type', () => {
    from('memory:in')
      .validate('device.telemetry@1')
      .filter((m) => {
        expectTypeOf(m.body).toEqualTypeOf<DeviceTelemetryV1>();
        expectTypeOf(m.body.temperature).toEqualTypeOf<number>();
        expectTypeOf(m.body.humidity).toEqualTypeOf<number | undefined>();
        return true;
      })
      .to('memory:out');
  });

  it('types the body of from(uri, { contract })', () => {
    from('memory:in', { contract: 'device.telemetry@1' }).filter((m) => {
      expectTypeOf(m.body).toEqualTypeOf<DeviceTelemetryV1>();
      return true;
    }).to('memory:out');
    // without a contract, from<T> is as before
    expectTypeOf(from<{ n: number }>('memory:in')).toEqualTypeOf<ReturnType<typeof from<{ n: number }>>>();
  });

  it('refuses to read a field the validated body does not have', () => {
    from('memory:in')
      .validate('device.telemetry@1')
      // @ts-expect-error `pressure` is not in device.telemetry@1
      .filter((m) => m.body.pressure > 1000)
      .to('memory:out');
    from('memory:in', { contract: 'device.telemetry@1' })
      // @ts-expect-error `unit` only exists from device.telemetry@2 on
      .filter((m) => m.body.unit === 'C')
      .to('memory:out');
    from('memory:in')
      .validate('device.telemetry@1')
      .transform(toBackend)
      // @ts-expect-error after the transform the body is a backend reading: no `ts` any more
      .filter((m) => m.body.ts !== '')
      .to('memory:out');
  });

  it('refuses an unknown contract name', () => {
    // @ts-expect-error no such contract
    from('memory:in').validate('device.telemetry@3');
    // @ts-expect-error contracts are named subject@version
    from('memory:in', { contract: 'device.telemetry' });
  });

  it('compiles .to(uri, { contract }) only when the body type matches the contract', () => {
    from('memory:in')
      .validate('device.telemetry@1')
      .transform(toBackend)
      .to('memory:readings', { contract: 'backend.reading@1' });

    from('memory:in')
      .validate('device.telemetry@1')
      // @ts-expect-error a device.telemetry@1 body is not a backend.reading@1
      .to('memory:readings', { contract: 'backend.reading@1' });

    from('memory:in')
      .validate('device.telemetry@1')
      .transform((m) => ({ deviceId: m.body.deviceId, timestamp: Date.parse(m.body.ts), temperatureC: m.body.temperature }))
      // @ts-expect-error temperatureF is missing
      .to('memory:readings', { contract: 'backend.reading@1' });

    from('memory:in')
      .validate('device.telemetry@1')
      .transform((m) => ({ ...toBackend(m), location: 'roof' }))
      // @ts-expect-error `location` is a field backend.reading@1 does not allow
      .to('memory:readings', { contract: 'backend.reading@1' });

    from<unknown>('memory:in')
      // @ts-expect-error an unchecked body cannot be sent as a contract
      .to('memory:readings', { contract: 'backend.reading@1' });

    const exact: BackendReadingV1 = { deviceId: 'd', timestamp: 0, temperatureC: 0, temperatureF: 32 };
    from('memory:in').transform(() => exact).to('memory:readings', { contract: 'backend.reading@1', id: 'send' });
  });

  it('types .upcast() as the target version, and checks upcasters against both contracts', () => {
    from('memory:in', { contract: 'device.telemetry@1' })
      .upcast('device.telemetry', 1, 2)
      .filter((m) => {
        expectTypeOf(m.body).toEqualTypeOf<DeviceTelemetryV2>();
        expectTypeOf(m.body.unit).toEqualTypeOf<'C' | 'F'>();
        return true;
      })
      .to('memory:out');
    // @ts-expect-error device.telemetry has no version 3
    from('memory:in').upcast('device.telemetry', 1, 3);
    defineUpcaster('device.telemetry', 1, 2, (v1) => ({ ...v1, unit: 'C' as const }));
    // @ts-expect-error the result lacks `unit`, required in v2
    defineUpcaster('device.telemetry', 1, 2, (v1) => ({ ...v1 }));
    // @ts-expect-error 'K' is not a unit of v2
    defineUpcaster('device.telemetry', 1, 2, (v1) => ({ ...v1, unit: 'K' as const }));
  });
});
