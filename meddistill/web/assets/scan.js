// A scan as MedDistill's Python pipeline reads it, in the browser: PNG / JPEG through the browser's decoder with no
// colour conversion, uncompressed DICOM parsed here (modality LUT, the file's window or min-max, MONOCHROME1
// inverted, padding black: meddistill/data/dicom.py), then the model's input: values / 255, grey or colour as the
// model takes them, bilinear resize with antialiasing (torch.nn.functional.interpolate, align_corners=False,
// antialias=True: meddistill/data/tensors.py) and (x - 0.5) / 0.5.
"use strict";

class ScanError extends Error {}

const TS = {
  implicit: "1.2.840.10008.1.2",
  explicit: "1.2.840.10008.1.2.1",
};
const LONG_VR = new Set(["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"]);
const TAG = (g, e) => g * 65536 + e;
const WANTED = {
  [TAG(0x0002, 0x0010)]: "TransferSyntaxUID",
  [TAG(0x0028, 0x0002)]: "SamplesPerPixel",
  [TAG(0x0028, 0x0004)]: "PhotometricInterpretation",
  [TAG(0x0028, 0x0006)]: "PlanarConfiguration",
  [TAG(0x0028, 0x0008)]: "NumberOfFrames",
  [TAG(0x0028, 0x0010)]: "Rows",
  [TAG(0x0028, 0x0011)]: "Columns",
  [TAG(0x0028, 0x0100)]: "BitsAllocated",
  [TAG(0x0028, 0x0101)]: "BitsStored",
  [TAG(0x0028, 0x0103)]: "PixelRepresentation",
  [TAG(0x0028, 0x0120)]: "PixelPaddingValue",
  [TAG(0x0028, 0x0121)]: "PixelPaddingRangeLimit",
  [TAG(0x0028, 0x1050)]: "WindowCenter",
  [TAG(0x0028, 0x1051)]: "WindowWidth",
  [TAG(0x0028, 0x1052)]: "RescaleIntercept",
  [TAG(0x0028, 0x1053)]: "RescaleSlope",
  [TAG(0x0028, 0x1056)]: "VOILUTFunction",
  [TAG(0x0028, 0x3000)]: "ModalityLUTSequence",
  [TAG(0x0028, 0x3010)]: "VOILUTSequence",
  [TAG(0x5200, 0x9229)]: "SharedFunctionalGroupsSequence",
  [TAG(0x5200, 0x9230)]: "PerFrameFunctionalGroupsSequence",
  [TAG(0x7fe0, 0x0010)]: "PixelData",
};
const NUMERIC = new Set(["SamplesPerPixel", "PlanarConfiguration", "Rows", "Columns", "BitsAllocated", "BitsStored",
  "PixelRepresentation", "PixelPaddingValue", "PixelPaddingRangeLimit"]);

// numpy.rint: round half to even.
function rint(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}

function clip8(x) {
  return Math.min(255, Math.max(0, rint(Number.isFinite(x) ? x : 0)));
}

function ascii(bytes, start, length) {
  let text = "";
  for (let i = start; i < start + length && i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
  return text;
}

function isDicom(bytes) {
  return bytes.length >= 132 && ascii(bytes, 128, 4) === "DICM";
}

// Every element of a DICOM byte stream that WANTED names, at the top level only (sequences are walked over).
function parseDicom(buffer, name) {
  const bytes = new Uint8Array(buffer);
  const view = new DataView(buffer);
  const found = {};
  let explicit = true;
  const fail = () => {
    throw new ScanError(`${name} is truncated or not a DICOM file; export it again from the PACS or viewer.`);
  };
  const u16 = (p) => (p + 2 <= bytes.length ? view.getUint16(p, true) : fail());
  const u32 = (p) => (p + 4 <= bytes.length ? view.getUint32(p, true) : fail());

  function element(pos, meta) {
    const group = u16(pos), elem = u16(pos + 2);
    let vr = null, length, value;
    if (group === 0xfffe) {
      length = u32(pos + 4); value = pos + 8;
    } else if (explicit || meta) {
      vr = ascii(bytes, pos + 4, 2);
      if (LONG_VR.has(vr)) { length = u32(pos + 8); value = pos + 12; } else { length = u16(pos + 6); value = pos + 8; }
    } else {
      length = u32(pos + 4); value = pos + 8;
    }
    const undefinedLength = length === 0xffffffff;
    const next = undefinedLength ? items(value) : value + length;
    if (next > bytes.length) fail();
    return { tag: TAG(group, elem), group, elem, vr, length, value, next, undefinedLength };
  }

  // Walk the items of an undefined-length sequence (or encapsulated pixel data) to its delimiter.
  function items(pos) {
    for (;;) {
      const group = u16(pos), elem = u16(pos + 2), length = u32(pos + 4);
      if (group === 0xfffe && elem === 0xe0dd) return pos + 8;
      if (group !== 0xfffe || elem !== 0xe000) fail();
      if (length !== 0xffffffff) { pos += 8 + length; continue; }
      pos += 8;
      for (;;) {
        if (u16(pos) === 0xfffe && u16(pos + 2) === 0xe00d) { pos += 8; break; }
        pos = element(pos, false).next;
      }
    }
  }

  let pos = 0;
  if (isDicom(bytes)) {
    pos = 132;
  } else if (!(bytes.length > 8 && [0x0002, 0x0008].includes(view.getUint16(0, true)))) {
    throw new ScanError(`${name} is not a DICOM file (no "DICM" marker); give a .dcm file, a PNG or a JPEG.`);
  }
  let syntax = TS.implicit;
  while (pos + 8 <= bytes.length && u16(pos) === 0x0002) {
    const el = element(pos, true);
    if (el.tag === TAG(0x0002, 0x0010)) syntax = ascii(bytes, el.value, el.length).replace(/[\0 ]+$/, "");
    pos = el.next;
  }
  if (syntax !== TS.implicit && syntax !== TS.explicit) {
    throw new ScanError(`${name} is stored compressed or big-endian (transfer syntax ${syntax}); this page reads ` +
      "uncompressed DICOM: decompress it (for example gdcmconv --raw, or pydicom's decompress) or use MedDistill's " +
      "Explain page.");
  }
  explicit = syntax === TS.explicit;
  while (pos + 8 <= bytes.length) {
    const el = element(pos, false);
    const key = WANTED[el.tag];
    if (key) found[key] = el;
    pos = el.next;
  }
  const read = (key) => {
    const el = found[key];
    if (!el) return undefined;
    if (NUMERIC.has(key)) return el.length >= 2 ? view.getUint16(el.value, true) : undefined;
    return ascii(bytes, el.value, el.length).replace(/[\0 ]+$/, "").trim();
  };
  return { bytes, view, found, read, syntax };
}

function firstNumber(text) {
  if (text === undefined || text === "") return null;
  const value = parseFloat(String(text).split("\\")[0]);
  return Number.isFinite(value) ? value : null;
}

// numpy.float32 of a number.
const f32 = Math.fround;

// A DICOM file -> {width, height, channels (1 or 3), data: Uint8Array (H*W*channels)}, as read_dicom_pixels.
function decodeDicom(buffer, name) {
  const ds = parseDicom(buffer, name);
  const pixel = ds.found.PixelData;
  if (!pixel) throw new ScanError(`${name} has no pixel data (a report or structured document?); give an image.`);
  if (pixel.undefinedLength) {
    throw new ScanError(`${name} holds compressed pixel data; decompress it (gdcmconv --raw) or use the Explain page.`);
  }
  const unsupported = {
    ModalityLUTSequence: "a modality LUT table",
    VOILUTSequence: "a VOI LUT table",
    PerFrameFunctionalGroupsSequence: "per-frame functional groups (an enhanced multi-frame file)",
    SharedFunctionalGroupsSequence: "shared functional groups (an enhanced multi-frame file)",
  };
  for (const [key, what] of Object.entries(unsupported)) {
    if (ds.found[key]) {
      throw new ScanError(`${name} uses ${what}, which this page does not apply; read it with MedDistill's ` +
        "Explain page, which does.");
    }
  }
  const rows = ds.read("Rows"), cols = ds.read("Columns");
  const samples = ds.read("SamplesPerPixel") || 1;
  const bits = ds.read("BitsAllocated") || 16;
  const stored = ds.read("BitsStored") || bits;
  const signed = ds.read("PixelRepresentation") === 1;
  const photometric = (ds.read("PhotometricInterpretation") || "MONOCHROME2").toUpperCase();
  const frames = parseInt(ds.read("NumberOfFrames") || "1", 10) || 1;
  if (!rows || !cols) throw new ScanError(`${name} gives no image size (Rows, Columns); export it again.`);
  if (![8, 16, 32].includes(bits)) throw new ScanError(`${name} has ${bits}-bit pixels; this page reads 8, 16 or 32.`);
  if (samples === 3 && photometric !== "RGB") {
    throw new ScanError(`${name} is colour in ${photometric}; this page reads RGB colour: use the Explain page.`);
  }
  if (samples !== 1 && samples !== 3) throw new ScanError(`${name} has ${samples} samples per pixel; give 1 or 3.`);
  if (photometric === "PALETTE COLOR") throw new ScanError(`${name} is palette colour; use the Explain page.`);
  const count = rows * cols * samples, size = bits / 8;
  const index = frames > 1 ? Math.floor(frames / 2) : 0;
  const start = pixel.value + index * count * size;
  if (start + count * size > ds.bytes.length) throw new ScanError(`${name} is truncated; export it again.`);
  const raw = new Float64Array(count);
  const mask = stored < 32 ? 2 ** stored - 1 : 0xffffffff;
  for (let i = 0; i < count; i++) {
    const p = start + i * size;
    let v = bits === 8 ? ds.bytes[p] : bits === 16 ? ds.view.getUint16(p, true) : ds.view.getUint32(p, true);
    if (stored < bits) v = v & mask;
    if (signed && stored < 32 && v >= 2 ** (stored - 1)) v -= 2 ** stored;
    if (signed && stored === 32) v = v | 0;
    raw[i] = v;
  }
  let values = raw;
  if (samples === 3 && ds.read("PlanarConfiguration") === 1) {  // RRR...GGG...BBB -> RGBRGB
    values = new Float64Array(count);
    const plane = rows * cols;
    for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) values[i * 3 + c] = raw[c * plane + i];
  }
  const data = new Uint8Array(count);
  if (samples === 3) {
    const scale = 255.0 / (2 ** stored - 1.0);
    for (let i = 0; i < count; i++) data[i] = clip8(f32(values[i]) * scale);
    return { width: cols, height: rows, channels: 3, data };
  }
  let padding = null;
  if (ds.found.PixelPaddingValue) {
    const signedValue = (v) => (signed && v >= 32768 ? v - 65536 : v);
    const a = signedValue(ds.read("PixelPaddingValue"));
    const b = ds.found.PixelPaddingRangeLimit ? signedValue(ds.read("PixelPaddingRangeLimit")) : a;
    padding = [Math.min(a, b), Math.max(a, b)];
  }
  const slope = firstNumber(ds.read("RescaleSlope")), intercept = firstNumber(ds.read("RescaleIntercept"));
  const y = slope === null ? 1 : slope, x = intercept === null ? 0 : intercept;
  const pixels = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    let v = values[i];
    if (y !== 1) v = v * y;
    if (x !== 0) v = v + x;
    pixels[i] = f32(v);
  }
  const center = firstNumber(ds.read("WindowCenter")), width = firstNumber(ds.read("WindowWidth"));
  const fn = (ds.read("VOILUTFunction") || "LINEAR").toUpperCase();
  const masked = (i) => padding !== null && raw[i] >= padding[0] && raw[i] <= padding[1];
  if (center !== null && width !== null && (width >= 1 || (width > 0 && fn !== "LINEAR"))) {
    for (let i = 0; i < count; i++) data[i] = clip8(windowed(pixels[i], center, width, fn));
  } else {
    let lo = Infinity, hi = -Infinity, any = false;
    for (let i = 0; i < count; i++) {
      if (masked(i) || !Number.isFinite(pixels[i])) continue;
      any = true; lo = Math.min(lo, pixels[i]); hi = Math.max(hi, pixels[i]);
    }
    if (!any) {  // all padding: scale over every value, as _minmax does
      for (let i = 0; i < count; i++) if (Number.isFinite(pixels[i])) { lo = Math.min(lo, pixels[i]); hi = Math.max(hi, pixels[i]); }
    }
    const scale = hi > lo ? 255.0 / (hi - lo) : 0.0;
    for (let i = 0; i < count; i++) data[i] = masked(i) ? 0 : clip8((pixels[i] - lo) * scale);
  }
  for (let i = 0; i < count; i++) {
    if (photometric === "MONOCHROME1") data[i] = 255 - data[i];
    if (masked(i)) data[i] = 0;
  }
  return { width: cols, height: rows, channels: 1, data };
}

// apply_window of meddistill/data/dicom.py (PS3.3 C.11.2.1.2).
function windowed(v, center, width, fn) {
  if (fn === "SIGMOID") return 255.0 / (1.0 + Math.exp(-4.0 * (v - center) / width));
  if (fn === "LINEAR_EXACT") return ((v - center) / width + 0.5) * 255.0;
  if (width === 1) return v > center - 0.5 ? 255.0 : 0.0;
  return ((v - (center - 0.5)) / (width - 1.0) + 0.5) * 255.0;
}

// A PNG's bit depth (IHDR), or null for other files.
function pngBitDepth(bytes) {
  const signature = [0x89, 0x50, 0x4e, 0x47];
  return signature.every((b, i) => bytes[i] === b) && bytes.length > 25 ? bytes[24] : null;
}

// A PNG / JPEG (any format the browser decodes) -> {width, height, channels: 3, data}, without colour management.
async function decodeRaster(buffer, name) {
  const bytes = new Uint8Array(buffer);
  if (pngBitDepth(bytes) === 16) {
    throw new ScanError(`${name} is a 16-bit PNG, which a browser reads at 8 bits; give it as DICOM or an 8-bit PNG.`);
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes]), { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  } catch (error) {
    throw new ScanError(`${name} could not be read as an image; give a PNG, a JPEG or an uncompressed DICOM file.`);
  }
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width; canvas.height = bitmap.height;
  const context = canvas.getContext("2d", { colorSpace: "srgb" });
  context.drawImage(bitmap, 0, 0);
  const rgba = context.getImageData(0, 0, bitmap.width, bitmap.height).data;
  const data = new Uint8Array(bitmap.width * bitmap.height * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) { data[j] = rgba[i]; data[j + 1] = rgba[i + 1]; data[j + 2] = rgba[i + 2]; }
  return { width: bitmap.width, height: bitmap.height, channels: 3, data };
}

// Weights of torch's antialiased bilinear resize along one axis: per output index, (first input index, weights).
function axisWeights(inSize, outSize) {
  const scale = inSize / outSize;
  const support = scale >= 1.0 ? scale : 1.0;
  const invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
  const out = [];
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xsize = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    const weights = [];
    let total = 0;
    for (let j = 0; j < xsize; j++) {
      const w = Math.max(0, 1 - Math.abs((j + xmin - center + 0.5) * invscale));
      weights.push(w); total += w;
    }
    out.push([xmin, total !== 0 ? weights.map((w) => w / total) : weights]);
  }
  return out;
}

// A decoded scan -> the model's input (1, C, S, S) as a Float32Array.
function toInput(scan, channels, size) {
  const { width, height } = scan;
  const planes = [];
  for (let c = 0; c < channels; c++) {
    const plane = new Float64Array(width * height);
    for (let i = 0; i < width * height; i++) {
      if (scan.channels === 1) plane[i] = f32(scan.data[i] / 255.0);
      else if (channels === 3) plane[i] = f32(scan.data[i * 3 + c] / 255.0);
      else plane[i] = f32((f32(scan.data[i * 3] / 255) + f32(scan.data[i * 3 + 1] / 255) + f32(scan.data[i * 3 + 2] / 255)) / 3);
    }
    planes.push(plane);
  }
  const xs = axisWeights(width, size), ys = axisWeights(height, size);
  const out = new Float32Array(channels * size * size);
  for (let c = 0; c < channels; c++) {
    let plane = planes[c];
    if (width !== size || height !== size) {
      const rows = new Float64Array(height * size);  // horizontal pass, then vertical
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < size; x++) {
          const [first, w] = xs[x];
          let sum = 0;
          for (let k = 0; k < w.length; k++) sum += plane[y * width + first + k] * w[k];
          rows[y * size + x] = sum;
        }
      }
      plane = new Float64Array(size * size);
      for (let y = 0; y < size; y++) {
        const [first, w] = ys[y];
        for (let x = 0; x < size; x++) {
          let sum = 0;
          for (let k = 0; k < w.length; k++) sum += rows[(first + k) * size + x] * w[k];
          plane[y * size + x] = sum;
        }
      }
    }
    for (let i = 0; i < size * size; i++) out[c * size * size + i] = (plane[i] - 0.5) / 0.5;
  }
  return out;
}

async function readScan(file) {
  const buffer = await file.arrayBuffer();
  const bytes = new Uint8Array(buffer);
  const dicomName = /\.(dcm|dicom)$/i.test(file.name);
  if (isDicom(bytes) || dicomName) return decodeDicom(buffer, file.name);
  return decodeRaster(buffer, file.name);
}
