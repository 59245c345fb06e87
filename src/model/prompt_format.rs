//! How a prompt's `<image>` markers are written for the model (`prompt_format`, contract version 3) and
//! which media each prompt token attends to (`cross_attention`): both decided by explicit manifest fields.
//!
//! OpenFlamingo (versions 1 and 2, or a version-3 manifest saying so): `<image>` stays as it is and a token
//! attends to the most recent image. IDEFICS (what IdeficsProcessor does): each text piece between markers is
//! stripped of spaces, each image is written `<fake_token_around_image><image><fake_token_around_image>`
//! with one fake token shared by two images that have nothing between them, and a token after an EOS attends
//! to no image until the next `<image>`.

use crate::model::manifest::PromptFormat;

/// The marker prompt templates write for one image.
pub const IMAGE_MARKER: &str = "<image>";

/// The prompt text as the model's processor writes it (see the module doc).
pub fn render(text: &str, f: &PromptFormat) -> String {
    if f.image_open.is_empty() && f.image_close.is_empty() && !f.strip_text_around_images {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 16);
    let pieces: Vec<&str> = text.split(IMAGE_MARKER).collect();
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            // Shared only when no text item (not even one that strips to nothing) separates the two images:
            // IdeficsProcessor resets its "last was image" state on any text item.
            let shared = f.share_between_adjacent_images && i >= 2 && pieces[i - 1].is_empty();
            if !shared {
                out.push_str(&f.image_open);
            }
            out.push_str(IMAGE_MARKER);
            out.push_str(&f.image_close);
        }
        out.push_str(if f.strip_text_around_images { piece.trim_matches(' ') } else { piece });
    }
    out
}

/// The media index of every prompt token (contract `media_index`): the number of `<image>` tokens at or
/// before it, or 0 once an `eos` token has been seen and until the next `<image>` when `reset_after` is
/// `Some(eos)` (the EOS itself keeps the current image, as IDEFICS' `image_attention_mask` does).
pub fn media_index(ids: &[u32], image: u32, reset_after: Option<u32>) -> Vec<i64> {
    let mut count = 0i64;
    let mut after_eos = false;
    ids.iter()
        .map(|&t| {
            if t == image {
                count += 1;
                after_eos = false;
            }
            let v = if after_eos { 0 } else { count };
            if Some(t) == reset_after {
                after_eos = true;
            }
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idefics() -> PromptFormat {
        PromptFormat {
            endofchunk_text: "</s>".into(),
            image_open: "<f>".into(),
            image_close: "<f>".into(),
            share_between_adjacent_images: true,
            strip_text_around_images: true,
        }
    }

    #[test]
    fn openflamingo_format_keeps_the_text() {
        let t = " <image>Output: a cat.<|endofchunk|> <image><image>Output: ";
        assert_eq!(render(t, &PromptFormat::openflamingo()), t);
    }

    #[test]
    fn idefics_format_wraps_shares_and_strips() {
        let f = idefics();
        assert_eq!(render("<image>Caption: a cat.</s>\n<image>Caption:", &f), "<f><image><f>Caption: a cat.</s>\n<f><image><f>Caption:");
        assert_eq!(render("<image><image>Q: which? A: ", &f), "<f><image><f><image><f>Q: which? A:");
        // a text piece that strips to nothing still separates the images (no shared token)
        assert_eq!(render("<image> <image>x", &f), "<f><image><f><f><image><f>x");
        assert_eq!(render("  Instruction: go.  <image>", &f), "Instruction: go.<f><image><f>");
        assert_eq!(render("no images ", &f), "no images");
    }

    #[test]
    fn media_index_resets_after_eos_until_the_next_image() {
        // tokens: 9 = <image>, 2 = eos
        let ids = [1, 5, 9, 5, 2, 5, 5, 9, 5, 2];
        assert_eq!(media_index(&ids, 9, None), vec![0, 0, 1, 1, 1, 1, 1, 2, 2, 2]);
        assert_eq!(media_index(&ids, 9, Some(2)), vec![0, 0, 1, 1, 1, 0, 0, 2, 2, 2]);
    }
}
