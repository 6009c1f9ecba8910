//! CBC over byte slices of whole blocks, through `cbc`'s block-level API, and PKCS#7.
//!
//! The chaining state lives in the `cbc` encryptor/decryptor, so a stream can be fed in chunks
//! of any number of blocks; padding is added or checked only on the final block.

use aes::Aes256;
use aes::cipher::array::Array;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, InOutBuf};

use crate::BLOCK_LEN;

pub(crate) type CbcEncryptor = cbc::Encryptor<Aes256>;
pub(crate) type CbcDecryptor = cbc::Decryptor<Aes256>;

/// Encrypts `buf` in place. Any bytes past the last whole block are left alone: callers only
/// pass whole blocks.
pub(crate) fn encrypt_in_place(cbc: &mut CbcEncryptor, buf: &mut [u8]) {
    let (blocks, _) = Array::slice_as_chunks_mut(buf);
    cbc.encrypt_blocks(blocks);
}

/// Decrypts `buf` in place. Any bytes past the last whole block are left alone: callers only
/// pass whole blocks.
pub(crate) fn decrypt_in_place(cbc: &mut CbcDecryptor, buf: &mut [u8]) {
    let (blocks, _) = Array::slice_as_chunks_mut(buf);
    cbc.decrypt_blocks(blocks);
}

/// Encrypts the whole blocks of `input` into `output`, as many as both hold (callers pass
/// slices of the same length, whole blocks).
pub(crate) fn encrypt_b2b(cbc: &mut CbcEncryptor, input: &[u8], output: &mut [u8]) {
    let (input, _) = Array::slice_as_chunks(input);
    let (output, _) = Array::slice_as_chunks_mut(output);
    let blocks = input.len().min(output.len());
    let (Some(input), Some(output)) = (input.get(..blocks), output.get_mut(..blocks)) else {
        return;
    };
    if let Ok(blocks) = InOutBuf::new(input, output) {
        cbc.encrypt_blocks_inout(blocks);
    }
}

/// Decrypts the whole blocks of `input` into `output`, as many as both hold (callers pass
/// slices of the same length, whole blocks).
pub(crate) fn decrypt_b2b(cbc: &mut CbcDecryptor, input: &[u8], output: &mut [u8]) {
    let (input, _) = Array::slice_as_chunks(input);
    let (output, _) = Array::slice_as_chunks_mut(output);
    let blocks = input.len().min(output.len());
    let (Some(input), Some(output)) = (input.get(..blocks), output.get_mut(..blocks)) else {
        return;
    };
    if let Ok(blocks) = InOutBuf::new(input, output) {
        cbc.decrypt_blocks_inout(blocks);
    }
}

/// PKCS#7-pads the `tail` of a message (fewer than 16 bytes) into one block.
pub(crate) fn pad(tail: &[u8]) -> [u8; BLOCK_LEN] {
    // 1..=16: a message that ends on a block boundary gets a whole block of padding.
    let pad = BLOCK_LEN - tail.len() % BLOCK_LEN;
    let mut block = [pad as u8; BLOCK_LEN];
    block.iter_mut().zip(tail).for_each(|(b, t)| *b = *t);
    block
}

/// The length of `plain` (decrypted whole blocks) without its PKCS#7 padding, or `None` if the
/// padding is malformed (or `plain` is empty).
///
/// Not constant time, and it need not be: padding is only checked after the MAC, so it can't
/// serve as an oracle.
pub(crate) fn unpadded_len(plain: &[u8]) -> Option<usize> {
    let &last = plain.last()?;
    let pad = usize::from(last);
    if pad == 0 || pad > BLOCK_LEN || pad > plain.len() {
        return None;
    }
    let keep = plain.len() - pad;
    let padding = plain.get(keep..)?;
    padding.iter().all(|&b| b == last).then_some(keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad_then_unpad() {
        for len in 0..BLOCK_LEN {
            let tail = vec![0xAB; len];
            let block = pad(&tail);
            assert_eq!(&block[..len], &tail[..]);
            assert_eq!(unpadded_len(&block), Some(len));
        }
    }

    #[test]
    fn bad_padding() {
        assert_eq!(unpadded_len(&[]), None);
        assert_eq!(unpadded_len(&[0; 16]), None);
        assert_eq!(unpadded_len(&[17; 16]), None);
        let mut block = [4; 16];
        block[12] = 3;
        assert_eq!(unpadded_len(&block), None);
        assert_eq!(unpadded_len(&[2, 2]), Some(0));
        assert_eq!(unpadded_len(&[2]), None);
    }
}
