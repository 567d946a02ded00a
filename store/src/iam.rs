//! IAM records: users, their access keys and groups, and policy attachments.

use crate::error::{StoreError, StoreResult};
use crate::meta::Cf;
use crate::model::{
    AccessKeyRecord, Attachment, GroupRecord, IdentityProvider, KeySettings, KmsKeyRecord,
    NamedPolicyRecord, ServiceAccountRecord, SessionRecord, UserRecord,
};
use crate::{Store, now_ns};

fn user_key(name: &str) -> Vec<u8> {
    format!("user/{name}").into_bytes()
}

fn access_key_key(ak: &str) -> Vec<u8> {
    format!("key/{ak}").into_bytes()
}

fn attachment_key(id: &str) -> Vec<u8> {
    format!("att/{id}").into_bytes()
}

impl Store {
    /// Creates an enabled user with no groups.
    pub fn create_user(&self, name: &str) -> StoreResult<UserRecord> {
        if self.meta().contains(Cf::Iam, &user_key(name))? {
            return Err(StoreError::AlreadyExists(format!("user {name}")));
        }
        let rec = UserRecord {
            name: name.to_owned(),
            enabled: true,
            groups: Vec::new(),
            created_ns: now_ns(),
        };
        let mut batch = self.meta().batch();
        batch.put(Cf::Iam, &user_key(name), &rec)?;
        self.commit(batch)?;
        Ok(rec)
    }

    /// Reads a user.
    pub fn user(&self, name: &str) -> StoreResult<UserRecord> {
        self.meta()
            .get(Cf::Iam, &user_key(name))?
            .ok_or_else(|| StoreError::NotFound(format!("user {name}")))
    }

    /// Replaces a user record (enable/disable, groups).
    pub fn update_user(&self, rec: &UserRecord) -> StoreResult<()> {
        self.user(&rec.name)?;
        let mut batch = self.meta().batch();
        batch.put(Cf::Iam, &user_key(&rec.name), rec)?;
        self.commit(batch)
    }

    /// Every user, by name.
    pub fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        Ok(self
            .meta()
            .scan_prefix::<UserRecord>(Cf::Iam, b"user/")?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// Deletes a user with its access keys and the attachments that name it.
    pub fn delete_user(&self, name: &str) -> StoreResult<()> {
        self.user(name)?;
        let mut batch = self.meta().batch();
        batch.delete(Cf::Iam, &user_key(name))?;
        for k in self.list_keys(Some(name))? {
            batch.delete(Cf::Iam, &access_key_key(&k.access_key))?;
            batch.delete(Cf::Iam, &svc_key(&k.access_key))?;
            batch.delete(Cf::Iam, &key_settings_key(&k.access_key))?;
        }
        for a in self.list_attachments()? {
            if a.target == crate::model::AttachTarget::User(name.to_owned()) {
                batch.delete(Cf::Iam, &attachment_key(&a.id))?;
            }
        }
        self.commit(batch)
    }

    /// Creates a user with its first access key in one batch: with a key that is taken
    /// (another user's, a service account's or a live session's), nothing is created.
    pub fn create_user_with_key(
        &self,
        name: &str,
        access_key: &str,
        secret_key: &str,
    ) -> StoreResult<(UserRecord, AccessKeyRecord)> {
        let _gate = self.bucket_exclusive();
        if self.meta().contains(Cf::Iam, &user_key(name))? {
            return Err(StoreError::AlreadyExists(format!("user {name}")));
        }
        self.check_key_free(access_key)?;
        let user = UserRecord {
            name: name.to_owned(),
            enabled: true,
            groups: Vec::new(),
            created_ns: now_ns(),
        };
        let key = AccessKeyRecord {
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            user: name.to_owned(),
            created_ns: user.created_ns,
        };
        let mut batch = self.meta().batch();
        batch.put(Cf::Iam, &user_key(name), &user)?;
        batch.put(Cf::Iam, &access_key_key(access_key), &key)?;
        self.commit(batch)?;
        Ok((user, key))
    }

    /// AlreadyExists when an access key is in use: a user's or service account's key, or a
    /// session's.
    fn check_key_free(&self, access_key: &str) -> StoreResult<()> {
        if self.meta().contains(Cf::Iam, &access_key_key(access_key))?
            || self.meta().contains(Cf::Iam, &session_key(access_key))?
        {
            return Err(StoreError::AlreadyExists(format!(
                "access key {access_key}"
            )));
        }
        Ok(())
    }

    /// Stores a new access key for an existing user (AlreadyExists when the key is in use).
    pub fn create_key(
        &self,
        user: &str,
        access_key: &str,
        secret_key: &str,
    ) -> StoreResult<AccessKeyRecord> {
        self.user(user)?;
        self.check_key_free(access_key)?;
        let rec = AccessKeyRecord {
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            user: user.to_owned(),
            created_ns: now_ns(),
        };
        let mut batch = self.meta().batch();
        batch.put(Cf::Iam, &access_key_key(access_key), &rec)?;
        self.commit(batch)?;
        Ok(rec)
    }

    /// Reads an access key.
    pub fn key(&self, access_key: &str) -> StoreResult<Option<AccessKeyRecord>> {
        self.meta().get(Cf::Iam, &access_key_key(access_key))
    }

    /// Access keys, all or one user's.
    pub fn list_keys(&self, user: Option<&str>) -> StoreResult<Vec<AccessKeyRecord>> {
        Ok(self
            .meta()
            .scan_prefix::<AccessKeyRecord>(Cf::Iam, b"key/")?
            .into_iter()
            .map(|(_, v)| v)
            .filter(|k| user.is_none_or(|u| k.user == u))
            .collect())
    }

    /// Deletes an access key (and its service account description, if it is one).
    pub fn delete_key(&self, access_key: &str) -> StoreResult<()> {
        if self.key(access_key)?.is_none() {
            return Err(StoreError::NotFound(format!("access key {access_key}")));
        }
        let mut batch = self.meta().batch();
        batch.delete(Cf::Iam, &access_key_key(access_key))?;
        batch.delete(Cf::Iam, &svc_key(access_key))?;
        batch.delete(Cf::Iam, &key_settings_key(access_key))?;
        self.commit(batch)
    }

    /// Stores a policy attachment.
    pub fn add_attachment(&self, att: &Attachment) -> StoreResult<()> {
        let mut batch = self.meta().batch();
        batch.put(Cf::Iam, &attachment_key(&att.id), att)?;
        self.commit(batch)
    }

    /// Every attachment, by id.
    pub fn list_attachments(&self) -> StoreResult<Vec<Attachment>> {
        Ok(self
            .meta()
            .scan_prefix::<Attachment>(Cf::Iam, b"att/")?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// Removes an attachment.
    pub fn delete_attachment(&self, id: &str) -> StoreResult<()> {
        if !self.meta().contains(Cf::Iam, &attachment_key(id))? {
            return Err(StoreError::NotFound(format!("attachment {id}")));
        }
        let mut batch = self.meta().batch();
        batch.delete(Cf::Iam, &attachment_key(id))?;
        self.commit(batch)
    }
}

fn svc_key(ak: &str) -> Vec<u8> {
    format!("svc/{ak}").into_bytes()
}

fn key_settings_key(ak: &str) -> Vec<u8> {
    format!("key-settings/{ak}").into_bytes()
}

fn named_policy_key(name: &str) -> Vec<u8> {
    format!("named-policy/{name}").into_bytes()
}

fn group_key(name: &str) -> Vec<u8> {
    format!("group/{name}").into_bytes()
}

fn session_key(ak: &str) -> Vec<u8> {
    format!("sess/{ak}").into_bytes()
}

fn revoke_key(user: &str) -> Vec<u8> {
    format!("revoke/{user}").into_bytes()
}

fn revoke_access_key_key(access_key: &str) -> Vec<u8> {
    format!("revoke-key/{access_key}").into_bytes()
}

fn account_key(name: &str) -> Vec<u8> {
    format!("account/{name}").into_bytes()
}

fn kms_key(name: &str) -> Vec<u8> {
    format!("kms/{name}").into_bytes()
}

fn idp_key(name: &str) -> Vec<u8> {
    format!("idp/{name}").into_bytes()
}

impl Store {
    /// Stores a service account: its key (owned by `rec.owner`) and its description, in one
    /// batch.
    pub fn create_service_account(
        &self,
        rec: &ServiceAccountRecord,
        secret_key: &str,
    ) -> StoreResult<()> {
        self.create_service_account_with(rec, secret_key, None)
    }

    /// `create_service_account` with MinIO's settings (name, status, expiry), in the same batch.
    pub fn create_service_account_with(
        &self,
        rec: &ServiceAccountRecord,
        secret_key: &str,
        settings: Option<&KeySettings>,
    ) -> StoreResult<()> {
        self.user(&rec.owner)?;
        self.check_key_free(&rec.access_key)?;
        let key = AccessKeyRecord {
            access_key: rec.access_key.clone(),
            secret_key: secret_key.to_owned(),
            user: rec.owner.clone(),
            created_ns: rec.created_ns,
        };
        let mut batch = self.meta().batch();
        batch.put(Cf::Iam, &access_key_key(&rec.access_key), &key)?;
        batch.put(Cf::Iam, &svc_key(&rec.access_key), rec)?;
        if let Some(settings) = settings {
            batch.put(Cf::Iam, &key_settings_key(&rec.access_key), settings)?;
        }
        self.commit(batch)
    }

    /// Every service account.
    pub fn list_service_accounts(&self) -> StoreResult<Vec<ServiceAccountRecord>> {
        Ok(self
            .meta()
            .scan_prefix::<ServiceAccountRecord>(Cf::Iam, b"svc/")?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// Stores an STS session, dropping expired ones on the way.
    pub fn put_session(&self, rec: &SessionRecord) -> StoreResult<()> {
        let now = now_ns();
        let mut batch = self.meta().batch();
        for old in self.list_sessions()? {
            if old.expires_ns <= now {
                batch.delete(Cf::Iam, &session_key(&old.access_key))?;
            }
        }
        batch.put(Cf::Iam, &session_key(&rec.access_key), rec)?;
        self.commit(batch)
    }

    /// Every stored session (expired ones included until the next `put_session`).
    pub fn list_sessions(&self) -> StoreResult<Vec<SessionRecord>> {
        Ok(self
            .meta()
            .scan_prefix::<SessionRecord>(Cf::Iam, b"sess/")?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// Refuses every signature, presigned URL and session of `user` made before `before_ns`
    /// (the latest call wins).
    pub fn set_revocation(&self, user: &str, before_ns: u64) -> StoreResult<()> {
        let mut batch = self.meta().batch();
        batch.put(Cf::Iam, &revoke_key(user), &before_ns)?;
        self.commit(batch)
    }

    /// Every user's revocation time.
    pub fn list_revocations(&self) -> StoreResult<Vec<(String, u64)>> {
        self.revocations(b"revoke/")
    }

    /// The revocation times stored under `prefix`, by the name after it.
    fn revocations(&self, prefix: &[u8]) -> StoreResult<Vec<(String, u64)>> {
        Ok(self
            .meta()
            .scan_prefix::<u64>(Cf::Iam, prefix)?
            .into_iter()
            .map(|(k, v)| {
                let name = String::from_utf8_lossy(k.strip_prefix(prefix).unwrap_or(&k));
                (name.into_owned(), v)
            })
            .collect())
    }

    /// Refuses every signature and presigned URL made with `access_key` before `before_ns`,
    /// and the STS sessions made from it before then (the latest call wins); the user's
    /// other keys are unaffected.
    pub fn set_key_revocation(&self, access_key: &str, before_ns: u64) -> StoreResult<()> {
        let mut batch = self.meta().batch();
        batch.put(Cf::Iam, &revoke_access_key_key(access_key), &before_ns)?;
        self.commit(batch)
    }

    /// Every access key's revocation time.
    pub fn list_key_revocations(&self) -> StoreResult<Vec<(String, u64)>> {
        self.revocations(b"revoke-key/")
    }

    /// Adds or replaces an identity provider.
    pub fn put_identity_provider(&self, p: &IdentityProvider) -> StoreResult<()> {
        let mut batch = self.meta().batch();
        batch.put(Cf::Iam, &idp_key(p.name()), p)?;
        self.commit(batch)
    }

    /// Every identity provider, by name.
    pub fn list_identity_providers(&self) -> StoreResult<Vec<IdentityProvider>> {
        Ok(self
            .meta()
            .scan_prefix::<IdentityProvider>(Cf::Iam, b"idp/")?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// Removes an identity provider.
    pub fn delete_identity_provider(&self, name: &str) -> StoreResult<()> {
        if !self.meta().contains(Cf::Iam, &idp_key(name))? {
            return Err(StoreError::NotFound(format!("identity provider {name}")));
        }
        let mut batch = self.meta().batch();
        batch.delete(Cf::Iam, &idp_key(name))?;
        self.commit(batch)
    }

    /// Adds or replaces a KMS key.
    pub fn put_kms_key(&self, k: &KmsKeyRecord) -> StoreResult<()> {
        let mut batch = self.meta().batch();
        batch.put(Cf::Iam, &kms_key(&k.name), k)?;
        self.commit(batch)
    }

    /// Adds a KMS key, or fails with AlreadyExists.
    pub fn create_kms_key(&self, k: &KmsKeyRecord) -> StoreResult<()> {
        let _gate = self.bucket_exclusive();
        if self.meta().contains(Cf::Iam, &kms_key(&k.name))? {
            return Err(StoreError::AlreadyExists(format!("KMS key {}", k.name)));
        }
        self.put_kms_key(k)
    }

    /// Every KMS key, by name.
    pub fn list_kms_keys(&self) -> StoreResult<Vec<KmsKeyRecord>> {
        Ok(self
            .meta()
            .scan_prefix::<KmsKeyRecord>(Cf::Iam, b"kms/")?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// An account-wide setting document (`public-access-block`), as the gateway wrote it.
    pub fn account_setting(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        self.meta().get_raw(Cf::Iam, &account_key(name))
    }

    /// Sets (or with `None` removes) an account-wide setting document, with bucket documents
    /// that change with it, in one batch.
    pub fn set_account_setting(
        &self,
        name: &str,
        doc: Option<&[u8]>,
        bucket_docs: &[(&str, &str, Option<&[u8]>)],
    ) -> StoreResult<()> {
        let _gate = self.bucket_shared();
        let mut batch = self.meta().batch();
        match doc {
            Some(d) => batch.put_raw(Cf::Iam, &account_key(name), d)?,
            None => batch.delete(Cf::Iam, &account_key(name))?,
        }
        for (bucket, doc_name, d) in bucket_docs {
            let k = crate::meta::bucket_cfg_key(bucket, doc_name);
            match d {
                Some(d) => batch.put_raw(Cf::BucketCfg, &k, d)?,
                None => batch.delete(Cf::BucketCfg, &k)?,
            }
        }
        self.commit(batch)
    }
}

impl Store {
    /// Replaces a service account's record and settings together (its key stays).
    pub fn update_service_account(
        &self,
        rec: &ServiceAccountRecord,
        settings: &KeySettings,
        new_secret: Option<&str>,
    ) -> StoreResult<()> {
        let Some(mut key) = self.key(&rec.access_key)? else {
            return Err(StoreError::NotFound(format!(
                "service account {}",
                rec.access_key
            )));
        };
        let mut batch = self.meta().batch();
        if let Some(secret) = new_secret {
            key.secret_key = secret.to_owned();
            batch.put(Cf::Iam, &access_key_key(&rec.access_key), &key)?;
        }
        batch.put(Cf::Iam, &svc_key(&rec.access_key), rec)?;
        batch.put(Cf::Iam, &key_settings_key(&rec.access_key), settings)?;
        self.commit(batch)
    }

    /// Sets an access key's settings (IAM's `UpdateAccessKey`: Active or Inactive).
    pub fn set_key_settings(&self, access_key: &str, settings: &KeySettings) -> StoreResult<()> {
        if self.key(access_key)?.is_none() {
            return Err(StoreError::NotFound(format!("access key {access_key}")));
        }
        let mut batch = self.meta().batch();
        batch.put(Cf::Iam, &key_settings_key(access_key), settings)?;
        self.commit(batch)
    }

    /// An access key's settings (the defaults when none were stored).
    pub fn key_settings(&self, access_key: &str) -> StoreResult<KeySettings> {
        Ok(self
            .meta()
            .get(Cf::Iam, &key_settings_key(access_key))?
            .unwrap_or_default())
    }

    /// Every service account's stored settings, by access key.
    pub fn list_key_settings(&self) -> StoreResult<Vec<(String, KeySettings)>> {
        let start = key_settings_key("").len();
        Ok(self
            .meta()
            .scan_prefix::<KeySettings>(Cf::Iam, b"key-settings/")?
            .into_iter()
            .filter_map(|(k, v)| Some((String::from_utf8(k.get(start..)?.to_vec()).ok()?, v)))
            .collect())
    }

    /// A named policy, if there is one.
    pub fn named_policy(&self, name: &str) -> StoreResult<Option<NamedPolicyRecord>> {
        self.meta().get(Cf::Iam, &named_policy_key(name))
    }

    /// Every named policy, by name.
    pub fn list_named_policies(&self) -> StoreResult<Vec<NamedPolicyRecord>> {
        Ok(self
            .meta()
            .scan_prefix::<NamedPolicyRecord>(Cf::Iam, b"named-policy/")?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// Creates or replaces a named policy, and rewrites `attachments` (those of the name, with
    /// its new text) in the same batch.
    pub fn put_named_policy(
        &self,
        rec: &NamedPolicyRecord,
        attachments: &[Attachment],
    ) -> StoreResult<()> {
        let mut batch = self.meta().batch();
        batch.put(Cf::Iam, &named_policy_key(&rec.name), rec)?;
        for a in attachments {
            batch.put(Cf::Iam, &attachment_key(&a.id), a)?;
        }
        self.commit(batch)
    }

    /// Deletes a named policy and the attachments of it, in one batch.
    pub fn delete_named_policy(&self, name: &str, attachments: &[String]) -> StoreResult<()> {
        if self.named_policy(name)?.is_none() {
            return Err(StoreError::NotFound(format!("policy {name}")));
        }
        let mut batch = self.meta().batch();
        batch.delete(Cf::Iam, &named_policy_key(name))?;
        for id in attachments {
            batch.delete(Cf::Iam, &attachment_key(id))?;
        }
        self.commit(batch)
    }

    /// Stores or replaces several attachments and deletes others, in one batch.
    pub fn replace_attachments(&self, put: &[Attachment], delete: &[String]) -> StoreResult<()> {
        let mut batch = self.meta().batch();
        for a in put {
            batch.put(Cf::Iam, &attachment_key(&a.id), a)?;
        }
        for id in delete {
            batch.delete(Cf::Iam, &attachment_key(id))?;
        }
        self.commit(batch)
    }

    /// Every group record (groups without one are enabled).
    pub fn list_groups(&self) -> StoreResult<Vec<GroupRecord>> {
        Ok(self
            .meta()
            .scan_prefix::<GroupRecord>(Cf::Iam, b"group/")?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// Stores a group's record.
    pub fn put_group(&self, rec: &GroupRecord) -> StoreResult<()> {
        let mut batch = self.meta().batch();
        batch.put(Cf::Iam, &group_key(&rec.name), rec)?;
        self.commit(batch)
    }

    /// Removes a group's record and its attachments, in one batch.
    pub fn delete_group(&self, name: &str) -> StoreResult<()> {
        let mut batch = self.meta().batch();
        batch.delete(Cf::Iam, &group_key(name))?;
        for a in self.list_attachments()? {
            if a.target == crate::model::AttachTarget::Group(name.to_owned()) {
                batch.delete(Cf::Iam, &attachment_key(&a.id))?;
            }
        }
        self.commit(batch)
    }
}
