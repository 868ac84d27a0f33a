//! What reading a folder or an .npz file hands back: the decoded images ([`Decoded`], also what
//! the decode cache stores), and the [`Mode`] of a read and its [`Outcome`]. A lower module that
//! `folder`, `npz`, `cache` and `dataref` all use, so that none of them imports another back.

use crate::report::DatasetReport;
use crate::Split;

/// Images of one split, in order, with the entries they came from.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub classes: Vec<String>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub train: Split,
    pub test: Split,
    pub val: Option<Split>,
}

/// What to do with the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Load the images: fail on any problem.
    Load,
    /// Report everything; decode to find unreadable images when memory allows; never fail on
    /// the dataset's problems.
    Inspect,
    /// Shape and classes only: the cache header, else the image headers; nothing decoded.
    Describe,
}

pub(crate) struct Outcome {
    pub data: Option<Decoded>,
    pub report: DatasetReport,
}
