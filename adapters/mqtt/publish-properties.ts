/** How an MQTT 5 property's value is written on the wire. */
export type PropertyType = 'byte' | 'int16' | 'int32' | 'var' | 'string' | 'binary' | 'pair';

/** A property a PUBLISH can carry (MQTT 5, 3.3.2.3): mqtt.js's name, identifier and wire type. */
export interface PublishProperty {
  readonly name: string;
  readonly id: number;
  readonly type: PropertyType;
}

/** Every property of a PUBLISH, the one table `publish-encoder.ts` and `publish-parser.ts` read. */
export const PUBLISH_PROPERTIES: readonly PublishProperty[] = [
  { name: 'payloadFormatIndicator', id: 0x01, type: 'byte' },
  { name: 'messageExpiryInterval', id: 0x02, type: 'int32' },
  { name: 'contentType', id: 0x03, type: 'string' },
  { name: 'responseTopic', id: 0x08, type: 'string' },
  { name: 'correlationData', id: 0x09, type: 'binary' },
  { name: 'subscriptionIdentifier', id: 0x0b, type: 'var' },
  { name: 'topicAlias', id: 0x23, type: 'int16' },
  { name: 'userProperties', id: 0x26, type: 'pair' },
];
