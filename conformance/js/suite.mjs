// The AWS SDK for JavaScript v3 against fsgate, with its default CRC32 checksums and
// aws-chunked uploads. Usage: node suite.mjs ENDPOINT ACCESS_KEY SECRET_KEY
import {
  S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, HeadObjectCommand,
  ListObjectsV2Command, DeleteObjectsCommand, CopyObjectCommand, CreateMultipartUploadCommand,
  UploadPartCommand, CompleteMultipartUploadCommand, DeleteObjectCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { createHash, randomBytes } from "node:crypto";

const [endpoint, accessKeyId, secretAccessKey] = process.argv.slice(2);
const s3 = new S3Client({
  endpoint, region: "us-east-1", forcePathStyle: true,
  credentials: { accessKeyId, secretAccessKey },
});
const tests = [];
const test = (name, fn) => tests.push([name, fn]);
const assert = (cond, msg) => { if (!cond) throw new Error(msg); };
const bucket = "js-" + randomBytes(5).toString("hex");
const bytes = async (r) => Buffer.from(await r.Body.transformToByteArray());

test("objects_and_checksums", async () => {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const body = randomBytes(200000);
  const put = await s3.send(new PutObjectCommand({
    Bucket: bucket, Key: "dir/a.bin", Body: body, ContentType: "application/x-js", Metadata: { who: "js" },
  }));
  assert(put.ETag === `"${createHash("md5").update(body).digest("hex")}"`, "etag " + put.ETag);
  for (const algo of ["CRC32", "CRC32C", "SHA256", "SHA1"]) {
    const r = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "c-" + algo, Body: body, ChecksumAlgorithm: algo }));
    assert(r["Checksum" + algo], "no checksum " + algo);
    const g = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "c-" + algo, ChecksumMode: "ENABLED" }));
    assert((await bytes(g)).equals(body), "body " + algo);
    assert(g["Checksum" + algo] === r["Checksum" + algo], "checksum echo " + algo);
  }
  const h = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "dir/a.bin" }));
  assert(h.ContentLength === body.length && h.ContentType === "application/x-js" && h.Metadata.who === "js", "head");
  const g = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "dir/a.bin", Range: "bytes=5-9" }));
  assert((await bytes(g)).equals(body.subarray(5, 10)), "range");
  await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: "dir/b.bin", CopySource: `${bucket}/dir/a.bin` }));
  const l = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "dir/" }));
  assert(l.Contents.map((o) => o.Key).join(",") === "dir/a.bin,dir/b.bin", "list");
  const d = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: "dir/a.bin" }, { Key: "dir/b.bin" }] } }));
  assert(d.Deleted.length === 2, "delete objects");
  let missing = false;
  try { await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "dir/a.bin" })); } catch (e) { missing = e.name === "NoSuchKey"; }
  assert(missing, "deleted object still readable");
});

test("multipart", async () => {
  const p1 = randomBytes(5 * 1024 * 1024), p2 = randomBytes(1000);
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: "mp", ChecksumAlgorithm: "CRC32" }));
  const parts = [];
  for (const [n, b] of [[1, p1], [2, p2]]) {
    const r = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: "mp", UploadId, PartNumber: n, Body: b, ChecksumAlgorithm: "CRC32" }));
    parts.push({ PartNumber: n, ETag: r.ETag, ChecksumCRC32: r.ChecksumCRC32 });
  }
  const c = await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: "mp", UploadId, MultipartUpload: { Parts: parts } }));
  assert(c.ETag.endsWith('-2"'), "multipart etag " + c.ETag);
  const g = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "mp" }));
  assert((await bytes(g)).equals(Buffer.concat([p1, p2])), "multipart body");
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: "mp" }));
});

test("presigned", async () => {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "p", Body: "presigned" }));
  const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: "p" }), { expiresIn: 60 });
  const r = await fetch(url);
  assert(r.status === 200 && (await r.text()) === "presigned", "presigned get");
  const put = await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: "q" }), { expiresIn: 60 });
  const w = await fetch(put, { method: "PUT", body: "via url" });
  assert(w.status === 200, "presigned put " + w.status);
});

let failed = 0;
for (const [name, fn] of tests) {
  try { await fn(); console.log(`ok   ${name}`); } catch (e) { failed++; console.log(`FAIL ${name}: ${e.stack || e}`); }
}
console.log(`${tests.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
