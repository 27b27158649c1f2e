//! Uploads' metadata.

use rusqlite::{OptionalExtension, params};

use super::{FileRecord, Store, StoreError};

impl Store {
    /// Stores an upload's metadata.
    pub async fn insert_file(&self, f: FileRecord) -> Result<(), StoreError> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO files (id, filename, content_type, ext, size, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    f.id,
                    f.filename,
                    f.content_type,
                    f.ext,
                    f.size,
                    f.created_at
                ],
            )
            .map(|_| ())
        })
        .await
    }

    /// An upload's metadata.
    pub async fn file(&self, id: &str) -> Result<Option<FileRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT id, filename, content_type, ext, size, created_at FROM files WHERE id = ?1",
                [id],
                |r| {
                    Ok(FileRecord {
                        id: r.get(0)?,
                        filename: r.get(1)?,
                        content_type: r.get(2)?,
                        ext: r.get(3)?,
                        size: r.get(4)?,
                        created_at: r.get(5)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    /// Which of `ids` name no upload (in the order given).
    pub async fn missing_files(&self, ids: Vec<String>) -> Result<Vec<String>, StoreError> {
        self.read(move |c| {
            let mut st = c.prepare_cached("SELECT 1 FROM files WHERE id = ?1")?;
            let mut missing = Vec::new();
            for id in ids {
                if !st.exists([&id])? {
                    missing.push(id);
                }
            }
            Ok(missing)
        })
        .await
    }
}
