// The page's interface: load ONNX Runtime Web and the model from this file (no network), read a dropped or picked
// scan (scan.js), run the model and show the calibrated probabilities with the run's operating point.
"use strict";

const info = JSON.parse(document.getElementById("info").textContent);
const status = document.getElementById("status");
const results = document.getElementById("results");
let session = null;

function base64Bytes(id) {
  const text = document.getElementById(id).textContent.trim();
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

async function gunzip(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function sha256(bytes) {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function start() {
  try {
    const bundle = new TextDecoder().decode(base64Bytes("ort-bundle"));
    const url = URL.createObjectURL(new Blob([bundle], { type: "text/javascript" }));
    const ort = await import(url);
    ort.env.wasm.wasmBinary = (await gunzip(base64Bytes("ort-wasm"))).buffer;
    ort.env.wasm.numThreads = 1;  // no worker threads: a page opened from file:// is not cross-origin isolated
    ort.env.wasm.proxy = false;
    const model = base64Bytes("model");
    const digest = await sha256(model);
    if (digest !== info.model_sha256) {
      throw new Error(`the embedded model's SHA-256 is ${digest}, not the recorded ${info.model_sha256}`);
    }
    session = await ort.InferenceSession.create(model, { executionProviders: ["wasm"] });
    window.meddistill = { ort, session, ready: true };
    await run(new Float32Array(info.channels * info.size * info.size));  // warm up once, so a scan's time is steady
    status.textContent = `Ready: ONNX Runtime Web ${info.versions["onnxruntime-web"]}, model checked (SHA-256).`;
    status.dataset.state = "ready";
  } catch (error) {
    status.textContent = `The model could not be loaded in this browser (${error.message}); open the page in a ` +
      "current Chrome, Edge, Firefox or Safari.";
    status.dataset.state = "error";
  }
}

// The model's logits (K) for one input (1, C, S, S).
async function run(input) {
  const { ort } = window.meddistill;
  const feeds = { [info.input_name]: new ort.Tensor("float32", input, [1, info.channels, info.size, info.size]) };
  const output = await session.run(feeds);
  return Array.from(output[info.output_name].data);
}

function softmax(logits) {
  const top = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - top));
  const total = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / total);
}

function probabilities(logits) {
  return info.activation === "sigmoid" ? logits.map((v) => 1 / (1 + Math.exp(-v))) : softmax(logits);
}

function showScan(scan) {
  const canvas = document.getElementById("preview");
  canvas.width = scan.width; canvas.height = scan.height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(scan.width, scan.height);
  for (let i = 0; i < scan.width * scan.height; i++) {
    for (let c = 0; c < 3; c++) image.data[i * 4 + c] = scan.channels === 1 ? scan.data[i] : scan.data[i * 3 + c];
    image.data[i * 4 + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function decision(probs) {
  const points = info.operating || [];
  if (info.activation === "sigmoid") {
    const flagged = points.filter((p) => probs[p.index] >= p.threshold).map((p) => p.name);
    return flagged.length ? `Above its operating threshold: ${flagged.join(", ")}.` : "No finding above its operating threshold.";
  }
  if (info.classes.length === 2 && points.length) {
    const p = points[0];
    const above = probs[p.index] >= p.threshold;
    return `P(${p.name}) = ${probs[p.index].toFixed(3)}, ${above ? "at or above" : "below"} the operating threshold ` +
      `${p.threshold.toFixed(3)} (chosen on validation data: ${info.operating_rule}): ` +
      (above ? `read as ${p.name}.` : `not read as ${p.name}.`);
  }
  const best = probs.indexOf(Math.max(...probs));
  return `Most probable: ${info.classes[best]} (${probs[best].toFixed(3)}).`;
}

async function classify(file) {
  results.hidden = true;
  const message = document.getElementById("message");
  message.textContent = "";
  const table = document.getElementById("probs");
  table.replaceChildren();
  delete table.dataset.probs;
  delete table.dataset.file;
  if (!session) { message.textContent = status.textContent; return; }
  try {
    const scan = await readScan(file);
    showScan(scan);
    const input = toInput(scan, info.channels, info.size);
    const started = performance.now();
    const logits = await run(input);
    const milliseconds = performance.now() - started;
    const probs = probabilities(logits);
    info.classes.forEach((name, k) => {
      const row = document.createElement("tr");
      cell(row, name);
      cell(row, probs[k].toFixed(3), "num");
      const bar = cell(row, "");
      bar.innerHTML = `<div class="bar" style="width:${(100 * probs[k]).toFixed(1)}%"></div>`;
      table.appendChild(row);
    });
    table.dataset.probs = JSON.stringify(probs);
    table.dataset.file = file.name;
    document.getElementById("decision").textContent = decision(probs);
    document.getElementById("scan-name").textContent = `${file.name} (${scan.width} x ${scan.height})`;
    const timing = document.getElementById("timing");
    timing.textContent = `The model ran in ${milliseconds.toFixed(2)} ms in this browser.`;
    timing.dataset.ms = String(milliseconds);
    window.meddistill.last = { file: file.name, input: Array.from(input), logits, probs };
    results.hidden = false;
  } catch (error) {
    message.textContent = error instanceof ScanError ? error.message :
      `${file.name} could not be read (${error.message}); give a PNG, a JPEG or an uncompressed DICOM file.`;
  }
}

const picker = document.getElementById("file");
picker.addEventListener("change", () => picker.files[0] && classify(picker.files[0]));
const zone = document.getElementById("drop");
zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", (event) => {
  event.preventDefault();
  zone.classList.remove("over");
  if (event.dataTransfer.files[0]) classify(event.dataTransfer.files[0]);
});
start();
