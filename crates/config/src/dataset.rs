//! `dataset`: a named dataset (`dataset = "cifar5"`), a folder of class folders or a .npz file
//! (`dataset = "data/flowers"`), or a `[dataset]` table with the path and how to read it.

use std::path::PathBuf;

use nas_datasets::{DataInfo, DataRef, DatasetName, FolderOptions};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How a folder or .npz dataset is read (`[dataset]` besides `path`); ignored by named datasets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatasetOptions {
    /// 1 (grey) or 3 (colour); default: 1 when every image is grey, else 3.
    pub channels: Option<u8>,
    /// [height, width] every image is resized to (bilinear); default: the most common size.
    pub image_size: Option<[u32; 2]>,
    /// Share of each class held out for testing when the folder has no train/ and test/.
    pub test_fraction: f64,
    /// Seed of that stratified split; stored with the run, so a resume, a worker and `eval` see
    /// the same split.
    pub split_seed: u64,
    /// Skip unreadable images (and report them) instead of stopping.
    pub skip_bad_images: bool,
    /// Fewest images a class may have.
    pub min_images_per_class: usize,
}

impl Default for DatasetOptions {
    fn default() -> Self {
        let folder = FolderOptions::default();
        DatasetOptions {
            channels: folder.channels,
            image_size: folder.image_size.map(|(h, w)| [h, w]),
            test_fraction: folder.test_fraction,
            split_seed: folder.split_seed,
            skip_bad_images: folder.skip_bad_images,
            min_images_per_class: folder.min_images_per_class,
        }
    }
}

/// The dataset of a run: what it is and how a folder is read.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetSpec {
    pub source: DataRef,
    pub options: DatasetOptions,
}

impl From<DatasetName> for DatasetSpec {
    fn from(name: DatasetName) -> DatasetSpec {
        DatasetSpec {
            source: DataRef::Named(name),
            options: DatasetOptions::default(),
        }
    }
}

impl From<DataRef> for DatasetSpec {
    fn from(source: DataRef) -> DatasetSpec {
        DatasetSpec {
            source,
            options: DatasetOptions::default(),
        }
    }
}

impl std::fmt::Display for DatasetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

impl DatasetSpec {
    /// The named dataset, if it is one.
    pub fn named(&self) -> Option<DatasetName> {
        self.source.named()
    }

    /// How nas-datasets reads the folder.
    pub fn folder_options(&self) -> FolderOptions {
        let o = &self.options;
        FolderOptions {
            channels: o.channels,
            image_size: o.image_size.map(|[h, w]| (h, w)),
            test_fraction: o.test_fraction,
            split_seed: o.split_seed,
            skip_bad_images: o.skip_bad_images,
            min_images_per_class: o.min_images_per_class,
            ..FolderOptions::default()
        }
    }

    /// Where decoded folders are cached.
    pub fn cache_dir(&self) -> PathBuf {
        nas_datasets::default_cache_dir()
    }

    /// Shape and class names, cheaply (a named dataset's are known; a folder's come from its
    /// decode cache or its image headers). Images must be square: the search space's rules
    /// compare kernels and pools with one side.
    pub fn describe(&self) -> anyhow::Result<DataInfo> {
        let info = self
            .source
            .describe(&self.folder_options(), Some(&self.cache_dir()))
            .map_err(|e| anyhow::anyhow!("dataset {}: {e}", self.source))?;
        anyhow::ensure!(
            info.height == info.width,
            "dataset {}: its images are {}×{} (height × width), but the search space needs square images; set [dataset] image_size = [{s}, {s}] to resize them",
            self.source,
            info.height,
            info.width,
            s = info.height.min(info.width)
        );
        Ok(info)
    }

    /// The dataset as a queued child carries it to a worker: a named dataset or a path without
    /// options as plain text (what workers always read), else the `[dataset]` table as JSON.
    pub fn to_job_string(&self) -> String {
        if self.options == DatasetOptions::default() {
            self.source.to_string()
        } else {
            serde_json::to_string(&Table::of(self)).expect("a dataset table serializes")
        }
    }

    /// Reads [`DatasetSpec::to_job_string`]'s text.
    pub fn from_job_string(text: &str) -> anyhow::Result<DatasetSpec> {
        if text.starts_with('{') {
            let table: Table = serde_json::from_str(text)
                .map_err(|e| anyhow::anyhow!("the queued dataset {text} is malformed: {e}"))?;
            let options = table.options();
            Ok(DatasetSpec {
                source: table.path.parse().map_err(anyhow::Error::msg)?,
                options,
            })
        } else {
            Ok(DatasetSpec::from(text.parse::<DataRef>().map_err(anyhow::Error::msg)?))
        }
    }

    /// Checks the options, naming the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        let o = &self.options;
        anyhow::ensure!(
            o.channels.is_none_or(|c| c == 1 || c == 3),
            "[dataset] channels must be 1 or 3"
        );
        anyhow::ensure!(
            o.test_fraction > 0.0 && o.test_fraction < 1.0,
            "[dataset] test_fraction = {} must lie between 0 and 1 (e.g. 0.2)",
            o.test_fraction
        );
        anyhow::ensure!(
            o.image_size.is_none_or(|[h, w]| h >= 1 && w >= 1),
            "[dataset] image_size must be [height, width] in pixels"
        );
        anyhow::ensure!(
            o.min_images_per_class >= 1,
            "[dataset] min_images_per_class must be at least 1"
        );
        Ok(())
    }
}

/// The `[dataset]` table: `path` plus [`DatasetOptions`], written out field by field because
/// serde's `flatten` would accept misspelt keys.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    path: String,
    #[serde(default)]
    channels: Option<u8>,
    #[serde(default)]
    image_size: Option<[u32; 2]>,
    #[serde(default = "defaults::test_fraction")]
    test_fraction: f64,
    #[serde(default)]
    split_seed: u64,
    #[serde(default)]
    skip_bad_images: bool,
    #[serde(default = "defaults::min_images_per_class")]
    min_images_per_class: usize,
}

mod defaults {
    pub fn test_fraction() -> f64 {
        super::DatasetOptions::default().test_fraction
    }
    pub fn min_images_per_class() -> usize {
        super::DatasetOptions::default().min_images_per_class
    }
}

impl Table {
    fn of(spec: &DatasetSpec) -> Table {
        let o = spec.options.clone();
        Table {
            path: spec.source.to_string(),
            channels: o.channels,
            image_size: o.image_size,
            test_fraction: o.test_fraction,
            split_seed: o.split_seed,
            skip_bad_images: o.skip_bad_images,
            min_images_per_class: o.min_images_per_class,
        }
    }

    fn options(&self) -> DatasetOptions {
        DatasetOptions {
            channels: self.channels,
            image_size: self.image_size,
            test_fraction: self.test_fraction,
            split_seed: self.split_seed,
            skip_bad_images: self.skip_bad_images,
            min_images_per_class: self.min_images_per_class,
        }
    }
}

/// A dataset as written: a name or path (a string), or a `[dataset]` table. A visitor rather than
/// an untagged enum, so a misspelt key in the table is reported as such ("unknown field
/// `test_fractoin`, expected one of …") instead of "did not match any variant".
enum Written {
    Name(String),
    Table(Table),
}

impl<'de> Deserialize<'de> for Written {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Written, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Written;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a dataset name or path, or a [dataset] table with `path`")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Written, E> {
                Ok(Written::Name(v.to_string()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Written, A::Error> {
                Table::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Written::Table)
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Serialize for DatasetSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.options == DatasetOptions::default() {
            s.serialize_str(&self.source.to_string())
        } else {
            Table::of(self).serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for DatasetSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<DatasetSpec, D::Error> {
        let (text, options) = match Written::deserialize(d)? {
            Written::Name(text) => (text, DatasetOptions::default()),
            Written::Table(table) => {
                let options = table.options();
                (table.path, options)
            }
        };
        let source = text.parse().map_err(serde::de::Error::custom)?;
        Ok(DatasetSpec { source, options })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Holder {
        dataset: DatasetSpec,
    }

    #[test]
    fn a_name_a_path_or_a_table() {
        let named: Holder = toml::from_str("dataset = \"cifar5\"").unwrap();
        assert_eq!(named.dataset.named(), Some(DatasetName::Cifar5));
        let path: Holder = toml::from_str("dataset = \"data/flowers\"").unwrap();
        assert_eq!(path.dataset.source, DataRef::Path("data/flowers".into()));
        let table: Holder = toml::from_str(
            "[dataset]\npath = \"./flowers\"\nchannels = 1\nimage_size = [32, 32]\ntest_fraction = 0.25\n",
        )
        .unwrap();
        assert_eq!(table.dataset.options.image_size, Some([32, 32]));
        assert_eq!(table.dataset.folder_options().test_fraction, 0.25);
        // Written back as it was read: a name stays a string, options stay a table.
        for holder in [named, path, table] {
            let text = toml::to_string(&holder).unwrap();
            assert_eq!(toml::from_str::<Holder>(&text).unwrap(), holder, "{text}");
        }
        let unknown = toml::from_str::<Holder>("[dataset]\npath = \"./x\"\nchanels = 1\n").unwrap_err();
        assert!(
            unknown.to_string().contains("unknown field `chanels`") && unknown.to_string().contains("channels"),
            "a misspelt key is named, with the keys there are: {unknown}"
        );
    }

    #[test]
    fn a_queued_child_carries_the_dataset_and_its_options() {
        let named = DatasetSpec::from(DatasetName::Cifar5);
        assert_eq!(named.to_job_string(), "cifar5");
        let mut folder = DatasetSpec::from(DataRef::Path("/data/flowers".into()));
        assert_eq!(folder.to_job_string(), "/data/flowers");
        folder.options.image_size = Some([64, 64]);
        let text = folder.to_job_string();
        assert!(text.starts_with('{'), "{text}");
        for spec in [named, folder] {
            assert_eq!(DatasetSpec::from_job_string(&spec.to_job_string()).unwrap(), spec);
        }
    }

    #[test]
    fn options_are_checked() {
        let mut spec = DatasetSpec::from(DataRef::Path("x".into()));
        spec.options.channels = Some(2);
        assert!(spec.validate().unwrap_err().to_string().contains("channels"));
        spec.options.channels = None;
        spec.options.test_fraction = 1.0;
        assert!(spec.validate().unwrap_err().to_string().contains("test_fraction"));
    }
}
