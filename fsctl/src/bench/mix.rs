//! The mix of a soak (`fsctl bench mixed --versioning --multipart`): what a long-lived bucket
//! sees, in a bounded space so it can run for hours.
//!
//! Per 100 operations: 40 GET and 20 HEAD of the working set (`bench/NNNNNNNN`, written
//! first), 10 PUT overwriting one of them, 5 PUT of a new scratch object, 5 LIST (100 keys),
//! 10 DELETE and 10 multipart uploads (create, one part, complete; one in ten aborted) of new
//! scratch objects. A DELETE removes the oldest scratch object (by version with
//! `--versioning`), so scratch objects do not pile up. With `--versioning`, each PUT over the
//! working set that leaves a key more than 4 noncurrent versions deletes the oldest of them,
//! by version id, as a lifecycle rule keeping 4 would. Every request must succeed: a GET never
//! meets a delete marker, a DELETE names what exists.
//!
//! Without `--multipart`, multipart slots are scratch PUTs.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;

use super::watch::Recorder;
use super::{Payloads, Stats, Target, key};

/// Noncurrent versions a working-set key keeps.
const KEEP_NONCURRENT: usize = 4;

/// What the workers share.
pub(super) struct Mix {
    pub bucket: String,
    pub objects: usize,
    pub versioning: bool,
    pub multipart: bool,
    /// Known versions of working-set keys, oldest first (`--versioning`).
    versions: Mutex<HashMap<usize, VecDeque<String>>>,
    /// Scratch objects to delete, oldest first: key and version.
    scratch: Mutex<VecDeque<(String, Option<String>)>>,
    next_scratch: AtomicUsize,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The text between `<tag>` and `</tag>` in a small XML answer.
fn xml_field(body: &[u8], tag: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
    let len = text.get(start..)?.find(&format!("</{tag}>"))?;
    text.get(start..start + len).map(str::to_owned)
}

/// One worker's requests: each timed and recorded on its own.
struct Worker<'a> {
    t: &'a Target,
    rec: &'a Recorder,
    st: Stats,
}

impl Worker<'_> {
    /// Sends a request; `None` (and an error counted) unless it succeeded.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Bytes,
    ) -> Option<(http::HeaderMap, Bytes)> {
        let sent = body.len() as u64;
        let t0 = Instant::now();
        match self.t.send_full(method, path, body).await {
            Ok((status, headers, got)) if status < 300 => {
                let us = t0.elapsed().as_micros() as u64;
                self.st.lat_us.push(us);
                self.st.bytes += sent + got.len() as u64;
                self.rec.record(Some(us));
                Some((headers, got))
            }
            other => {
                if let Ok((status, _, body)) = &other {
                    report_error(method, path, *status, body);
                }
                self.st.errors += 1;
                self.rec.record(None);
                None
            }
        }
    }
}

fn report_error(method: &str, path: &str, status: u16, body: &[u8]) {
    let code = xml_field(body, "Code").unwrap_or_default();
    eprintln!("\r{method} {path}: HTTP {status} {code}");
}

fn version_of(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get("x-amz-version-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| *v != "null")
        .map(str::to_owned)
}

impl Mix {
    pub(super) fn new(bucket: String, objects: usize, versioning: bool, multipart: bool) -> Self {
        Self {
            bucket,
            objects,
            versioning,
            multipart,
            versions: Mutex::default(),
            scratch: Mutex::default(),
            next_scratch: AtomicUsize::new(0),
        }
    }

    fn scratch_key(&self) -> String {
        format!(
            "scratch/{:010}",
            self.next_scratch.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// One operation of the mix, chosen by `r`.
    async fn op(&self, w: &mut Worker<'_>, i: usize, r: u64, payloads: &Payloads) {
        let b = &self.bucket;
        let idx = (r >> 8) as usize % self.objects;
        let k = key(idx);
        match r % 100 {
            0..=39 => {
                w.send("GET", &format!("/{b}/{k}"), Bytes::new()).await;
            }
            40..=59 => {
                w.send("HEAD", &format!("/{b}/{k}"), Bytes::new()).await;
            }
            60..=69 => {
                self.overwrite(w, idx, payloads.object(self.objects + i))
                    .await
            }
            70..=74 => self.put_scratch(w, payloads.object(self.objects + i)).await,
            75..=79 => {
                let path = format!("/{b}?list-type=2&prefix=bench/&max-keys=100");
                w.send("GET", &path, Bytes::new()).await;
            }
            80..=89 => self.delete_scratch(w).await,
            _ if self.multipart => {
                self.multipart(w, i, payloads.object(self.objects + i))
                    .await
            }
            _ => self.put_scratch(w, payloads.object(self.objects + i)).await,
        }
    }

    async fn overwrite(&self, w: &mut Worker<'_>, idx: usize, body: Bytes) {
        let b = &self.bucket;
        let k = key(idx);
        let Some((headers, _)) = w.send("PUT", &format!("/{b}/{k}"), body).await else {
            return;
        };
        if !self.versioning {
            return;
        }
        let oldest = {
            let mut versions = locked(&self.versions);
            let list = versions.entry(idx).or_default();
            list.extend(version_of(&headers));
            // The newest is current; beyond it, keep KEEP_NONCURRENT.
            (list.len() > KEEP_NONCURRENT + 1)
                .then(|| list.pop_front())
                .flatten()
        };
        if let Some(v) = oldest {
            w.send("DELETE", &format!("/{b}/{k}?versionId={v}"), Bytes::new())
                .await;
        }
    }

    async fn put_scratch(&self, w: &mut Worker<'_>, body: Bytes) {
        let k = self.scratch_key();
        if let Some((headers, _)) = w.send("PUT", &format!("/{}/{k}", self.bucket), body).await {
            locked(&self.scratch).push_back((k, version_of(&headers)));
        }
    }

    async fn delete_scratch(&self, w: &mut Worker<'_>) {
        let Some((k, version)) = locked(&self.scratch).pop_front() else {
            // Nothing to delete yet: a HEAD of the bucket keeps the request count.
            w.send("HEAD", &format!("/{}", self.bucket), Bytes::new())
                .await;
            return;
        };
        let path = match version {
            Some(v) => format!("/{}/{k}?versionId={v}", self.bucket),
            None => format!("/{}/{k}", self.bucket),
        };
        w.send("DELETE", &path, Bytes::new()).await;
    }

    async fn multipart(&self, w: &mut Worker<'_>, i: usize, body: Bytes) {
        let b = &self.bucket;
        let k = self.scratch_key();
        let Some((_, created)) = w
            .send("POST", &format!("/{b}/{k}?uploads"), Bytes::new())
            .await
        else {
            return;
        };
        let Some(id) = xml_field(&created, "UploadId") else {
            w.st.errors += 1;
            w.rec.record(None);
            return;
        };
        let part = format!("/{b}/{k}?partNumber=1&uploadId={id}");
        let etag = match w.send("PUT", &part, body).await {
            Some((headers, _)) => headers
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            None => String::new(),
        };
        let upload = format!("/{b}/{k}?uploadId={id}");
        if i.is_multiple_of(10) || etag.is_empty() {
            w.send("DELETE", &upload, Bytes::new()).await;
            return;
        }
        let done = format!(
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
        );
        if let Some((headers, _)) = w.send("POST", &upload, Bytes::from(done)).await {
            locked(&self.scratch).push_back((k, version_of(&headers)));
        }
    }

    /// Runs the mix with `concurrency` workers until `duration` has passed.
    pub(super) async fn run(
        self: Arc<Self>,
        t: Arc<Target>,
        concurrency: usize,
        duration: Duration,
        payloads: Arc<Payloads>,
        rec: Arc<Recorder>,
    ) -> Result<(Stats, Duration)> {
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let deadline = started + duration;
        let mut tasks = Vec::new();
        for n in 0..concurrency {
            let (mix, t, next, payloads, rec) = (
                self.clone(),
                t.clone(),
                next.clone(),
                payloads.clone(),
                rec.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut w = Worker {
                    t: &t,
                    rec: &rec,
                    st: Stats::default(),
                };
                let mut rng = (n as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                while Instant::now() < deadline {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let r = super::next_random(&mut rng);
                    mix.op(&mut w, i, r, &payloads).await;
                }
                w.st
            }));
        }
        Ok((Stats::join(tasks).await?, started.elapsed()))
    }

    /// Deletes what the mix left: scratch objects and noncurrent versions it knows of.
    pub(super) async fn cleanup(&self, t: &Target) {
        let scratch: Vec<_> = locked(&self.scratch).drain(..).collect();
        for (k, version) in scratch {
            let path = match version {
                Some(v) => format!("/{}/{k}?versionId={v}", self.bucket),
                None => format!("/{}/{k}", self.bucket),
            };
            let _ = t.send("DELETE", &path, Bytes::new()).await;
        }
        let versions: Vec<_> = locked(&self.versions).drain().collect();
        for (idx, list) in versions {
            for v in list {
                let path = format!("/{}/{}?versionId={v}", self.bucket, key(idx));
                let _ = t.send("DELETE", &path, Bytes::new()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::xml_field;

    #[test]
    fn upload_id_from_the_answer() {
        let body = b"<?xml version=\"1.0\"?><InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>abc-123</UploadId></InitiateMultipartUploadResult>";
        assert_eq!(xml_field(body, "UploadId").as_deref(), Some("abc-123"));
        assert_eq!(xml_field(body, "Missing"), None);
    }
}
