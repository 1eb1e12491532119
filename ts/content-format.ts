/** CoAP Content-Formats (IANA "CoAP Content-Formats" registry, common entries). */

/** Content-Format numbers by name. */
export const ContentFormat = {
  TextPlain: 0,
  CoseEncrypt0: 16,
  CoseMac0: 17,
  CoseSign1: 18,
  AceCbor: 19,
  ImageGif: 21,
  ImageJpeg: 22,
  ImagePng: 23,
  LinkFormat: 40,
  Xml: 41,
  OctetStream: 42,
  Exi: 47,
  Json: 50,
  JsonPatch: 51,
  MergePatch: 52,
  Cbor: 60,
  Cwt: 61,
  MultipartCore: 62,
  CborSeq: 63,
  CoseEncrypt: 96,
  CoseMac: 97,
  CoseSign: 98,
  CoseKey: 101,
  CoseKeySet: 102,
  SenmlJson: 110,
  SensmlJson: 111,
  SenmlCbor: 112,
  SensmlCbor: 113,
  SenmlExi: 114,
  SensmlExi: 115,
  YangDataCbor: 140,
  CoapGroupJson: 256,
  ConciseProblemDetails: 257,
  SwidCbor: 258,
  DotsCbor: 271,
  MissingBlocks: 272,
  PkixCert: 280,
  PkcsCertSet: 281,
  SenmlXml: 310,
  SensmlXml: 311,
  SenmlEtchJson: 320,
  SenmlEtchCbor: 322,
  YangDataCborSid: 340,
  TdJson: 432,
  OcfCbor: 10000,
  OscoreDraft: 10001,
  JsonDeflate: 11050,
  CborDeflate: 11060,
  Lwm2mTlv: 11542,
  Lwm2mJson: 11543,
  Lwm2mCbor: 11544,
} as const;

const MEDIA_TYPES: ReadonlyMap<number, string> = new Map<number, string>([
  [0, 'text/plain;charset=utf-8'],
  [16, 'application/cose;cose-type="cose-encrypt0"'],
  [17, 'application/cose;cose-type="cose-mac0"'],
  [18, 'application/cose;cose-type="cose-sign1"'],
  [19, 'application/ace+cbor'],
  [21, 'image/gif'],
  [22, 'image/jpeg'],
  [23, 'image/png'],
  [40, 'application/link-format'],
  [41, 'application/xml'],
  [42, 'application/octet-stream'],
  [47, 'application/exi'],
  [50, 'application/json'],
  [51, 'application/json-patch+json'],
  [52, 'application/merge-patch+json'],
  [60, 'application/cbor'],
  [61, 'application/cwt'],
  [62, 'application/multipart-core'],
  [63, 'application/cbor-seq'],
  [96, 'application/cose;cose-type="cose-encrypt"'],
  [97, 'application/cose;cose-type="cose-mac"'],
  [98, 'application/cose;cose-type="cose-sign"'],
  [101, 'application/cose-key'],
  [102, 'application/cose-key-set'],
  [110, 'application/senml+json'],
  [111, 'application/sensml+json'],
  [112, 'application/senml+cbor'],
  [113, 'application/sensml+cbor'],
  [114, 'application/senml-exi'],
  [115, 'application/sensml-exi'],
  [140, 'application/yang-data+cbor'],
  [256, 'application/coap-group+json'],
  [257, 'application/concise-problem-details+cbor'],
  [258, 'application/swid+cbor'],
  [271, 'application/dots+cbor'],
  [272, 'application/missing-blocks+cbor-seq'],
  [280, 'application/pkix-cert'],
  [281, 'application/pkcs7-mime;smime-type=certs-only'],
  [310, 'application/senml+xml'],
  [311, 'application/sensml+xml'],
  [320, 'application/senml-etch+json'],
  [322, 'application/senml-etch+cbor'],
  [340, 'application/yang-data+cbor;id=sid'],
  [432, 'application/td+json'],
  [10000, 'application/vnd.ocf+cbor'],
  [10001, 'application/oscore'],
  [11050, 'application/json;content-coding=deflate'],
  [11060, 'application/cbor;content-coding=deflate'],
  [11542, 'application/vnd.oma.lwm2m+tlv'],
  [11543, 'application/vnd.oma.lwm2m+json'],
  [11544, 'application/vnd.oma.lwm2m+cbor'],
]);

/** Normalises a media type for lookup: lower case, no spaces around ';' and '='. */
function normalise(mime: string): string {
  return mime.trim().toLowerCase().replace(/\s*([;=])\s*/g, '$1');
}

const BY_MIME: ReadonlyMap<string, number> = new Map(
  [...MEDIA_TYPES].map(([n, m]) => [normalise(m), n] as [string, number]),
);

/**
 * The media type of a Content-Format number, e.g. 50 → `'application/json'`;
 * undefined if not in the table.
 */
export function contentFormatName(n: number): string | undefined {
  return MEDIA_TYPES.get(n);
}

/**
 * The Content-Format number of a media type, e.g. `'application/json'` → 50
 * (case and spacing around `;` are ignored; `'text/plain'` means 0);
 * undefined if not in the table.
 */
export function contentFormatNumber(mime: string): number | undefined {
  const m = normalise(mime);
  return BY_MIME.get(m) ?? (m === 'text/plain' ? 0 : undefined);
}
