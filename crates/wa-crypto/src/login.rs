//! The login key schedule (PROTOCOL.md §2.3) as a chain of types, each step consuming the last:
//! [`ClientKeyPair`] → [`SharedSecret`] → [`ExpandedSecret`] → [`SessionKeys`].

use core::fmt;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::Mac;
use rand_core::CryptoRng;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::SecretError;
use crate::kdf::{hkdf_sha256, keyed};
use crate::session::SessionKeys;

/// The length of a decoded login `secret`: `server_public(32) ‖ hmac(32) ‖ keys_encrypted(80)`.
pub const SECRET_LEN: usize = 144;

const ENCRYPTED_KEYS_LEN: usize = 80;
const EXPANDED_LEN: usize = 80;

/// The client's X25519 key pair for one linking attempt.
///
/// Its public key goes into the QR code (`ref,base64(public),clientId`); [`agree`] consumes the
/// pair once the phone has scanned it and the server sent the `secret`. The private key is wiped
/// when the pair is dropped, and `Debug` shows only the public key.
///
/// [`agree`]: ClientKeyPair::agree
pub struct ClientKeyPair {
    private: StaticSecret,
    public: PublicKey,
}

impl ClientKeyPair {
    /// Generates a key pair from `rng`. Pass a seeded RNG for reproducible tests and the
    /// operating system's RNG otherwise.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_secret(StaticSecret::random_from_rng(rng))
    }

    /// Builds the key pair of a known private key (X25519 clamps it when it is used).
    pub fn from_private_key(private: [u8; 32]) -> Self {
        Self::from_secret(StaticSecret::from(private))
    }

    fn from_secret(private: StaticSecret) -> Self {
        let public = PublicKey::from(&private);
        Self { private, public }
    }

    /// The public key, as it goes (base64-encoded) into the QR code.
    pub fn public_key(&self) -> &[u8; 32] {
        self.public.as_bytes()
    }

    /// Step 1 of the schedule: X25519 with the server's public key from `secret`.
    ///
    /// # Errors
    ///
    /// [`SecretError::LowOrderPoint`] when the server's key is a low-order point, so the result
    /// would not depend on our private key.
    pub fn agree(self, secret: &LoginSecret) -> Result<SharedSecret, SecretError> {
        let server = PublicKey::from(secret.server_public);
        let shared = self.private.diffie_hellman(&server);
        if !shared.was_contributory() {
            return Err(SecretError::LowOrderPoint);
        }
        Ok(SharedSecret(shared))
    }
}

impl fmt::Debug for ClientKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKeyPair")
            .field("public", &Hex(self.public.as_bytes()))
            .finish_non_exhaustive()
    }
}

/// The decoded `secret` of a `Conn` message, split into its three parts.
///
/// Parsing checks only the encoding and the length; the HMAC is checked by
/// [`ExpandedSecret::session_keys`], which needs the shared secret.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct LoginSecret {
    server_public: [u8; 32],
    hmac: [u8; 32],
    encrypted_keys: [u8; ENCRYPTED_KEYS_LEN],
}

impl LoginSecret {
    /// Parses the base64 `secret` field of a `Conn` message.
    ///
    /// # Errors
    ///
    /// [`SecretError::Base64`] when it is not standard base64 with padding,
    /// [`SecretError::Length`] when it does not decode to 144 bytes.
    pub fn from_base64(secret: &str) -> Result<Self, SecretError> {
        // A valid secret is 192 characters; refuse to decode anything much longer.
        let max_encoded = SECRET_LEN.div_ceil(3) * 4;
        if secret.len() > max_encoded + 4 {
            return Err(SecretError::Length {
                len: secret.len() / 4 * 3,
            });
        }
        let bytes = Zeroizing::new(STANDARD.decode(secret)?);
        Self::from_bytes(&bytes)
    }

    /// Parses a decoded 144-byte secret.
    ///
    /// # Errors
    ///
    /// [`SecretError::Length`] when `bytes` is not 144 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        let wrong_length = SecretError::Length { len: bytes.len() };
        let Some((server_public, rest)) = bytes.split_first_chunk::<32>() else {
            return Err(wrong_length);
        };
        let Some((hmac, rest)) = rest.split_first_chunk::<32>() else {
            return Err(wrong_length);
        };
        let Ok(encrypted_keys) = <[u8; ENCRYPTED_KEYS_LEN]>::try_from(rest) else {
            return Err(wrong_length);
        };
        Ok(Self {
            server_public: *server_public,
            hmac: *hmac,
            encrypted_keys,
        })
    }

    /// The server's ephemeral X25519 public key (`secret[0..32]`).
    pub fn server_public_key(&self) -> &[u8; 32] {
        &self.server_public
    }

    /// The 144 bytes, in wire order.
    pub fn to_bytes(&self) -> Zeroizing<[u8; SECRET_LEN]> {
        let mut out = Zeroizing::new([0u8; SECRET_LEN]);
        scatter(
            out.iter_mut(),
            self.server_public
                .iter()
                .chain(&self.hmac)
                .chain(&self.encrypted_keys),
        );
        out
    }

    /// The secret as the server sends it: standard base64 with padding.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(*self.to_bytes())
    }

    /// The server's side of the schedule: the `secret` that hands `keys` to the client whose
    /// public key is `client_public`, using the server key pair of `server_private`.
    ///
    /// For test servers and tests (a real server picks a fresh key pair per login); the client
    /// never needs it.
    ///
    /// # Errors
    ///
    /// [`SecretError::LowOrderPoint`] when `client_public` is a low-order point.
    pub fn server_side(
        server_private: &[u8; 32],
        client_public: &[u8; 32],
        keys: &SessionKeys,
    ) -> Result<Self, SecretError> {
        let server = StaticSecret::from(*server_private);
        let server_public = *PublicKey::from(&server).as_bytes();
        let shared = server.diffie_hellman(&PublicKey::from(*client_public));
        if !shared.was_contributory() {
            return Err(SecretError::LowOrderPoint);
        }
        let expanded = SharedSecret(shared).expand();

        let mut encrypted_keys = [0u8; ENCRYPTED_KEYS_LEN];
        scatter(
            encrypted_keys.iter_mut(),
            keys.enc_key().iter().chain(keys.mac_key()),
        );
        let cbc = cbc::Encryptor::<aes::Aes256Enc>::new(
            (&expanded.enc_key).into(),
            (&expanded.iv).into(),
        );
        // 64 bytes of keys plus one block of padding fill the 80-byte buffer exactly, so
        // this cannot fail; the error arm only keeps the code free of panics.
        if cbc
            .encrypt_padded::<Pkcs7>(&mut encrypted_keys, 64)
            .is_err()
        {
            return Err(SecretError::KeysLength { len: 64 });
        }

        let mut mac = keyed(&expanded.mac_key);
        mac.update(&server_public);
        mac.update(&encrypted_keys);
        let hmac = mac.finalize().into_bytes().into();
        Ok(Self {
            server_public,
            hmac,
            encrypted_keys,
        })
    }
}

impl fmt::Debug for LoginSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginSecret")
            .field("server_public", &Hex(&self.server_public))
            .finish_non_exhaustive()
    }
}

/// Step 1's result: the X25519 shared secret. Wiped on drop.
pub struct SharedSecret(x25519_dalek::SharedSecret);

impl SharedSecret {
    /// Step 2: `HKDF-SHA256(ikm = shared, salt = 32 zero bytes, info = "", 80 bytes)`, the full
    /// HKDF (extract, then expand).
    pub fn expand(self) -> ExpandedSecret {
        let okm = hkdf_fixed::<EXPANDED_LEN>(self.0.as_bytes());
        let mut expanded = ExpandedSecret {
            enc_key: [0; 32],
            mac_key: [0; 32],
            iv: [0; 16],
        };
        scatter(
            expanded
                .enc_key
                .iter_mut()
                .chain(expanded.mac_key.iter_mut())
                .chain(expanded.iv.iter_mut()),
            okm.iter(),
        );
        expanded
    }

    /// The shared secret's bytes, for known-answer tests.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSecret { .. }")
    }
}

/// Step 2's result: the 80-byte expansion, as its three parts
/// (`expanded[0..32]` AES key, `[32..64]` HMAC key, `[64..80]` IV). Wiped on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct ExpandedSecret {
    enc_key: [u8; 32],
    mac_key: [u8; 32],
    iv: [u8; 16],
}

impl ExpandedSecret {
    /// The 80 bytes in order, for known-answer tests.
    pub fn to_bytes(&self) -> Zeroizing<[u8; EXPANDED_LEN]> {
        let mut out = Zeroizing::new([0u8; EXPANDED_LEN]);
        scatter(
            out.iter_mut(),
            self.enc_key.iter().chain(&self.mac_key).chain(&self.iv),
        );
        out
    }

    /// Steps 3 to 5: checks the secret's HMAC in constant time, then decrypts and unpads the
    /// session keys.
    ///
    /// # Errors
    ///
    /// [`SecretError::HmacMismatch`] (nothing is decrypted then), [`SecretError::BadPadding`],
    /// [`SecretError::KeysLength`].
    pub fn session_keys(self, secret: &LoginSecret) -> Result<SessionKeys, SecretError> {
        let mut mac = keyed(&self.mac_key);
        mac.update(&secret.server_public);
        mac.update(&secret.encrypted_keys);
        mac.verify_slice(&secret.hmac)
            .map_err(|_| SecretError::HmacMismatch)?;
        self.decrypt_keys(secret)
    }

    /// [`session_keys`](Self::session_keys) without the HMAC check, so that fuzzers reach the
    /// decryption and unpadding behind it.
    #[cfg(feature = "fuzzing")]
    #[doc(hidden)]
    pub fn session_keys_unauthenticated_for_fuzzing(
        self,
        secret: &LoginSecret,
    ) -> Result<SessionKeys, SecretError> {
        self.decrypt_keys(secret)
    }

    fn decrypt_keys(&self, secret: &LoginSecret) -> Result<SessionKeys, SecretError> {
        let mut buf = Zeroizing::new(secret.encrypted_keys);
        let cbc = cbc::Decryptor::<aes::Aes256Dec>::new((&self.enc_key).into(), (&self.iv).into());
        let keys = cbc
            .decrypt_padded::<Pkcs7>(&mut *buf)
            .map_err(|_| SecretError::BadPadding)?;
        let Some((enc_key, mac_key)) = keys.split_first_chunk::<32>() else {
            return Err(SecretError::KeysLength { len: keys.len() });
        };
        let Ok(mac_key) = <&[u8; 32]>::try_from(mac_key) else {
            return Err(SecretError::KeysLength { len: keys.len() });
        };
        Ok(SessionKeys::new(enc_key, mac_key))
    }
}

impl fmt::Debug for ExpandedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExpandedSecret { .. }")
    }
}

impl SessionKeys {
    /// The whole login key schedule: parses the base64 `secret` of a `Conn` message and runs
    /// [`ClientKeyPair::agree`], [`SharedSecret::expand`] and [`ExpandedSecret::session_keys`].
    ///
    /// # Errors
    ///
    /// Any [`SecretError`]; each variant is one distinct way the secret can be wrong.
    pub fn from_login(key_pair: ClientKeyPair, secret: &str) -> Result<Self, SecretError> {
        let secret = LoginSecret::from_base64(secret)?;
        key_pair.agree(&secret)?.expand().session_keys(&secret)
    }
}

/// HKDF-SHA256 with a zero salt and empty info into a fixed-size, wiped-on-drop buffer.
fn hkdf_fixed<const N: usize>(ikm: &[u8]) -> Zeroizing<[u8; N]> {
    const { assert!(N <= 255 * 32, "HKDF-SHA256 output is limited to 8160 bytes") };
    let mut okm = Zeroizing::new([0u8; N]);
    // The length is checked at compile time above, the only way `expand` can fail.
    #[allow(clippy::expect_used, reason = "N <= 8160 is a compile-time assertion")]
    hkdf_sha256(&[0u8; 32], ikm, &[], &mut *okm).expect("HKDF length checked at compile time");
    okm
}

/// Copies `src` into `dst` element by element, stopping at the shorter of the two.
fn scatter<'d, 's>(dst: impl Iterator<Item = &'d mut u8>, src: impl IntoIterator<Item = &'s u8>) {
    for (d, s) in dst.zip(src) {
        *d = *s;
    }
}

/// Lower-case hex for `Debug` of public values.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}
