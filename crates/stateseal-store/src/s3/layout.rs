//! Object keys, lock IDs and workspace listing exactly as OpenTofu lays them out
//! (docs/BACKENDS.md §3.2, §7.2, §7.6).

use crate::DEFAULT_WORKSPACE;

/// Where one workspace's state and locks live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub bucket: String,
    pub key: String,
    pub workspace_key_prefix: String,
}

impl Layout {
    /// The state object key: `key` verbatim for `default`, else Go's
    /// `path.Join(prefix, workspace, key)`.
    pub fn state_key(&self, workspace: &str) -> String {
        if workspace == DEFAULT_WORKSPACE {
            return self.key.clone();
        }
        path_join(&[&self.workspace_key_prefix, workspace, &self.key])
    }

    /// `<state key>.tflock`.
    pub fn lock_file_key(&self, workspace: &str) -> String {
        format!("{}.tflock", self.state_key(workspace))
    }

    /// DynamoDB `LockID` of the lock item, and the `Path` of lock info: `<bucket>/<state key>`.
    pub fn lock_id(&self, workspace: &str) -> String {
        format!("{}/{}", self.bucket, self.state_key(workspace))
    }

    /// DynamoDB `LockID` of the digest item: `<bucket>/<state key>-md5`.
    pub fn digest_id(&self, workspace: &str) -> String {
        format!("{}-md5", self.lock_id(workspace))
    }

    /// The ListObjectsV2 prefix for workspace discovery.
    pub fn list_prefix(&self) -> String {
        if self.workspace_key_prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.workspace_key_prefix)
        }
    }

    /// The workspace an object key belongs to, if it is a workspace state of this layout.
    pub fn workspace_of(&self, object_key: &str) -> Option<String> {
        let rest = if self.workspace_key_prefix.is_empty() {
            object_key
        } else {
            object_key.strip_prefix(&self.list_prefix())?
        };
        let (ws, tail) = rest.split_once('/')?;
        (tail == self.key && !ws.is_empty()).then(|| ws.to_string())
    }

    /// `["default"] + sorted(workspaces found in keys)`.
    pub fn workspaces<'a>(&self, keys: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut found: Vec<String> = keys
            .into_iter()
            .filter_map(|k| self.workspace_of(k))
            .filter(|w| w != DEFAULT_WORKSPACE)
            .collect();
        found.sort();
        found.dedup();
        let mut out = vec![DEFAULT_WORKSPACE.to_string()];
        out.extend(found);
        out
    }
}

/// Go's `path.Join`: joins non-empty elements with `/` and cleans the result.
pub fn path_join(parts: &[&str]) -> String {
    let joined = parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    if joined.is_empty() {
        return String::new();
    }
    clean(&joined)
}

/// Go's `path.Clean`.
fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            s => out.push(s),
        }
    }
    let body = out.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(prefix: &str) -> Layout {
        Layout {
            bucket: "my-bucket".into(),
            key: "app/terraform.tfstate".into(),
            workspace_key_prefix: prefix.into(),
        }
    }

    #[test]
    fn keys_and_ids_match_opentofu() {
        let l = layout("env:");
        assert_eq!(l.state_key("default"), "app/terraform.tfstate");
        assert_eq!(l.state_key("dev"), "env:/dev/app/terraform.tfstate");
        assert_eq!(
            l.lock_file_key("dev"),
            "env:/dev/app/terraform.tfstate.tflock"
        );
        assert_eq!(l.lock_id("dev"), "my-bucket/env:/dev/app/terraform.tfstate");
        assert_eq!(
            l.digest_id("default"),
            "my-bucket/app/terraform.tfstate-md5"
        );
        assert_eq!(layout("").state_key("dev"), "dev/app/terraform.tfstate");
        assert_eq!(layout("a/b").state_key("x"), "a/b/x/app/terraform.tfstate");
    }

    #[test]
    fn path_join_cleans_like_go() {
        assert_eq!(path_join(&["env:", "dev", "a//b/./c"]), "env:/dev/a/b/c");
        assert_eq!(path_join(&["env:", "dev", "../x"]), "env:/x");
        assert_eq!(path_join(&["", "dev", "k"]), "dev/k");
        assert_eq!(path_join(&["/a", "b/"]), "/a/b");
    }

    #[test]
    fn listing_accepts_only_exact_workspace_states() {
        let l = layout("env:");
        let keys = [
            "env:/dev/app/terraform.tfstate",
            "env:/dev/app/terraform.tfstate.tflock",
            "env:/prod/app/terraform.tfstate",
            "env:/prod/other/terraform.tfstate",
            "env:/a/b/app/terraform.tfstate",
            "env:/default/app/terraform.tfstate",
            "env:/$&+:=@/app/terraform.tfstate",
            "app/terraform.tfstate",
        ];
        assert_eq!(
            l.workspaces(keys),
            ["default", "$&+:=@", "dev", "prod"].map(String::from)
        );
        assert_eq!(l.list_prefix(), "env:/");
        let l = layout("");
        assert_eq!(
            l.workspaces(["dev/app/terraform.tfstate", "app/terraform.tfstate"]),
            ["default", "dev"].map(String::from)
        );
        assert_eq!(l.list_prefix(), "");
    }
}
