"""The trainer's side of the catalog: find a dataset, fetch its shards verified, keep them cached.

    from service.client import CatalogClient
    catalog = CatalogClient("http://127.0.0.1:8000")
    paths = catalog.download_dataset("high-3000-8ec9d4e538f8")
    folder = catalog.download_corpus("stdlib-5600000-0123456789ab")   # open_corpus(folder) reads it

A Dyck dataset (kind 'dyck') downloads with download_dataset exactly like an NCA dataset.
A token corpus downloads the same way, file by file, into CACHE/<id>/; each file's sha256 in
the listing must also be the one its manifest records, and the manifest (checked against
its ETag, the sha256 of its bytes) is written last, so the folder is a complete corpus
folder only once every file in it is verified, as `prepare` leaves one.

Shards download in Range pieces into CACHE/<id>/.partial-<name>. An interrupted
download resumes from the partial file's size; If-Range pins every piece to the
sha256 the listing promised, so a shard that changed on the server restarts from
scratch instead of being spliced. The finished file is hashed, compared with the
catalog's sha256 and only then renamed to CACHE/<id>/<name>, atomically: a file
under its final name is always complete and verified. A cached file whose sha256
matches is used without any download.

A dropped connection, a timeout or a 5xx answer, on a metadata GET or on one Range
piece, is tried again up to ATTEMPTS times in all, after 0.2 s, 0.4 s, 0.8 s ...;
a piece cut short keeps the bytes that arrived and the next try asks for the rest.
A 4xx is final at once. Ranks of a trainer on one machine share the cache folder:
each shard is downloaded under an exclusive file lock (flock on CACHE/<id>/.lock-<name>),
so a second process waits, then finds the verified file instead of fetching it again.

Every failure is a CatalogError with one line saying what happened and what to do.
Ids and shard names from the server are checked against the format's patterns
before they become local paths, so a misbehaving server cannot write outside the cache.
"""

import contextlib
import fcntl
import hashlib
import os
import time

import httpx

from generator.atomic import write_bytes_atomically
from generator.format import DATASET_ID_PATTERN, MANIFEST_NAME, SHARD_NAME_PATTERN, ManifestError
from generator.shards import file_digest, file_sha256
from service.corpora import CORPUS_FILE_NAMES, parse_corpus_manifest, split_files
from service.settings import TOKEN_ENV, SettingsError, token_from_environment

PIECE_BYTES = 8 * 1024 * 1024
PARTIAL_PREFIX = ".partial-"
LOCK_PREFIX = ".lock-"
ATTEMPTS = 4
"""Tries per request (a metadata GET, one Range piece) before giving up."""
FIRST_BACKOFF_SECONDS = 0.2
"""Wait after the first failed try; it doubles after each further one."""
MAX_BACKOFF_SECONDS = 5.0
RETRIED_TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
"""Failures another try may not meet: timeouts, refused or dropped connections, bodies cut short."""


class CatalogError(Exception):
    """The catalog could not be used; the message says why, in one line."""


class TransientError(Exception):
    """A failure worth another try (a dropped connection, a timeout, a 5xx answer); after the last
    try it becomes the CatalogError `what` after N attempt(s): `advice`."""

    def __init__(self, what: str, advice: str):
        super().__init__(what)
        self.what, self.advice = what, advice


class PartialShard:
    """The partial file of one shard download, opened for appending, and the sha256 of its bytes so far."""

    def __init__(self, out, digest):
        self.out, self.digest = out, digest

    def append(self, chunk: bytes) -> None:
        self.out.write(chunk)
        self.digest.update(chunk)

    def restart(self) -> None:
        self.out.seek(0)
        self.out.truncate()
        self.digest = hashlib.sha256()


@contextlib.contextmanager
def shard_lock(folder: str, name: str):
    """Hold an exclusive flock on FOLDER/.lock-<name> for the duration: ranks of a trainer on one machine
    share the cache, and only one of them downloads a given shard. The lock file stays (deleting it
    would let a waiting process and a newcomer lock two different files); the lock ends with the process."""
    fd = os.open(os.path.join(folder, LOCK_PREFIX + name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ncaforge", "catalog")


class CatalogClient:
    """A client of one catalog. `http` replaces the HTTP client (tests pass a FastAPI TestClient)."""

    def __init__(self, base_url: str, token: str | None = None, cache_dir: str | None = None,
                 timeout: float = 30.0, http: httpx.Client | None = None, attempts: int = ATTEMPTS,
                 backoff: float = FIRST_BACKOFF_SECONDS):
        self.base_url = base_url.rstrip("/")
        self.attempts, self.backoff = attempts, backoff
        self.cache_dir = cache_dir or default_cache_dir()
        try:
            token = token if token is not None else token_from_environment()
        except SettingsError as error:
            raise CatalogError(str(error)) from None
        self.http = http or httpx.Client(timeout=timeout)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "CatalogClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- metadata -------------------------------------------------------------------------

    def list_datasets(self, **filters) -> list:
        """Every dataset matching the filters of GET /v1/datasets (kind, band, min_ratio, max_ratio,
        generator_version, min_tokens), following the pages to the end."""
        return self._all_pages(f"{self.base_url}/v1/datasets", filters)

    def dataset(self, dataset_id: str) -> dict:
        """The summary of the dataset with exactly this id."""
        return self._get_json(f"{self.base_url}/v1/datasets/{self._checked_id(dataset_id)}")

    def shards(self, dataset_id: str) -> list:
        """Every shard of the dataset: name, rows, bytes, sha256, ratio range, url (a corpus's files:
        name, split, tokens, bytes, sha256, url)."""
        return self._all_pages(f"{self.base_url}/v1/datasets/{self._checked_id(dataset_id)}/shards", {})

    def manifest_bytes(self, dataset_id: str) -> bytes:
        """The dataset's or corpus's manifest.json, byte for byte, checked against its ETag (its sha256)."""
        url = f"{self.base_url}/v1/datasets/{self._checked_id(dataset_id)}/{MANIFEST_NAME}"
        response = self._get(url)
        actual = hashlib.sha256(response.content).hexdigest()
        if response.headers.get("etag") != f'"{actual}"':
            raise CatalogError(f"checksum mismatch for {dataset_id}/{MANIFEST_NAME}: its ETag is "
                               f"{response.headers.get('etag')} but the bytes received hash to {actual[:16]}...: re-run")
        return response.content

    # --- shard downloads --------------------------------------------------------------------

    def download_dataset(self, dataset_id: str, piece_bytes: int = PIECE_BYTES) -> list:
        """Download (or find cached) every shard; return their local paths in manifest order."""
        return [self._download(dataset_id, shard, piece_bytes) for shard in self.shards(dataset_id)]

    def download_shard(self, dataset_id: str, name: str, piece_bytes: int = PIECE_BYTES) -> str:
        """Download (or find cached) one shard, verified against the catalog's sha256; return its path."""
        shard = next((s for s in self.shards(dataset_id) if s["name"] == name), None)
        if shard is None:
            raise CatalogError(f"dataset {dataset_id} at {self.base_url} has no shard {name!r}")
        return self._download(dataset_id, shard, piece_bytes)

    # --- token corpora -----------------------------------------------------------------------

    def download_corpus(self, corpus_id: str, piece_bytes: int = PIECE_BYTES) -> str:
        """Download (or find cached) a token corpus into CACHE/<id>/, its files verified against the listing
        and the manifest, the manifest written last; return the folder (trainer.corpus.open_corpus opens it)."""
        data = self.manifest_bytes(corpus_id)
        try:
            manifest = parse_corpus_manifest(data, f"{corpus_id}/{MANIFEST_NAME} at {self.base_url}")
        except ManifestError as error:
            raise CatalogError(str(error)) from None
        if manifest is None:
            raise CatalogError(f"{corpus_id} at {self.base_url} is not a token corpus: use download_dataset() "
                               f"for NCA datasets (list_datasets(kind='token-corpus') lists corpora)")
        listed = {item["name"]: item for item in self.shards(corpus_id)}
        records = {record.file: record for record in split_files(manifest)}
        for name, record in records.items():
            item = listed.get(name)
            if item is None or (item["sha256"], item["bytes"]) != (record.sha256, record.bytes):
                raise CatalogError(f"the catalog at {self.base_url} lists {corpus_id}/{name} unlike its manifest "
                                   f"(missing, or another sha256 or size): the corpus changed while being read; re-run")
        for name in records:
            self._download(corpus_id, listed[name], piece_bytes)
        folder = os.path.join(self.cache_dir, corpus_id)
        with shard_lock(folder, MANIFEST_NAME):  # after the files: a folder with a manifest is complete
            path = os.path.join(folder, MANIFEST_NAME)
            if not os.path.isfile(path) or file_sha256(path) != hashlib.sha256(data).hexdigest():
                write_bytes_atomically(path, data)
        return folder

    def _download(self, dataset_id: str, shard: dict, piece_bytes: int) -> str:
        name = shard["name"]
        if not (SHARD_NAME_PATTERN.fullmatch(name) or name in CORPUS_FILE_NAMES):
            raise CatalogError(f"the catalog at {self.base_url} lists a shard named {name!r}, which is not a shard "
                               f"name: refusing to write it")
        folder = os.path.join(self.cache_dir, self._checked_id(dataset_id))
        os.makedirs(folder, exist_ok=True)
        with shard_lock(folder, name):  # another process fetching this shard finishes first; we then find its file
            return self._download_locked(dataset_id, folder, shard, piece_bytes)

    def _download_locked(self, dataset_id: str, folder: str, shard: dict, piece_bytes: int) -> str:
        name, expected, size = shard["name"], shard["sha256"], shard["bytes"]
        final, partial = os.path.join(folder, name), os.path.join(folder, PARTIAL_PREFIX + name)
        url = f"{self.base_url}/v1/datasets/{dataset_id}/shards/{name}"  # built here: see _all_pages
        if os.path.isfile(final):
            if file_sha256(final) == expected:
                return final
            os.remove(final)  # damaged or stale: nothing unverified stays under a shard's name
        if os.path.exists(partial) and os.path.getsize(partial) > size:
            os.remove(partial)  # longer than the shard: not a prefix of it
        digest = file_digest(partial) if os.path.exists(partial) else hashlib.sha256()
        with open(partial, "ab") as out:  # append mode: tell() starts at the partial file's size
            received = PartialShard(out, digest)
            while out.tell() < size:
                self._retrying(lambda: self._fetch_piece(url, f'"{expected}"', received,
                                                         min(piece_bytes, size - out.tell())))
            out.flush()
            os.fsync(out.fileno())
        actual = received.digest.hexdigest()
        if actual != expected:
            os.remove(partial)
            raise CatalogError(f"checksum mismatch for {dataset_id}/{name}: the catalog lists sha256 {expected[:16]}... "
                               f"but the downloaded bytes hash to {actual[:16]}...; deleted {partial}, nothing was "
                               f"cached: re-run to download again, or have the catalog's owner check the shard")
        os.replace(partial, final)
        return final

    def _fetch_piece(self, url: str, etag: str, received: "PartialShard", length: int) -> None:
        """Append the next `length` bytes to the partial file. Should the server answer with the whole
        file instead (If-Range: the shard changed), start over with it. A break mid-body keeps the
        bytes that arrived, so the next attempt resumes after them."""
        start = received.out.tell()
        headers = {**self.headers, "Range": f"bytes={start}-{start + length - 1}", "If-Range": etag}
        with self._request("GET", url, headers=headers) as response:
            if response.status_code == 200:
                received.restart()
            elif response.status_code != 206 or not response.headers.get("content-range", "").startswith(f"bytes {start}-"):
                response.read()
                raise self._failure(response, f"GET {url} ({headers['Range']})")
            for chunk in response.iter_bytes():
                received.append(chunk)

    # --- HTTP ----------------------------------------------------------------------------------

    def _checked_id(self, dataset_id: str) -> str:
        if not DATASET_ID_PATTERN.fullmatch(dataset_id):
            raise CatalogError(f"{dataset_id!r} is not a dataset id: ids look like high-3000-8ec9d4e538f8 "
                               f"(list them with list_datasets())")
        return dataset_id

    def _all_pages(self, url: str, params: dict) -> list:
        """Every item of a paged list. Pages are requested by offset from our own base URL rather than
        by following the server's links, so the token is never sent anywhere the caller did not name."""
        params = {key: value for key, value in params.items() if value is not None}
        items, offset = [], 0
        while True:
            page = self._get_json(url, params={**params, "offset": offset})
            items += page["items"]
            offset = page["offset"] + page["limit"]
            if not page["items"] or offset >= page["total"]:
                return items

    def _get_json(self, url: str, params: dict | None = None):
        return self._get(url, params).json()

    def _get(self, url: str, params: dict | None = None) -> httpx.Response:
        """The 200 answer to GET `url`, its body read, retried like every request."""
        def attempt():
            with self._request("GET", url, params=params, headers=self.headers) as response:
                response.read()
                if response.status_code != 200:
                    raise self._failure(response, f"GET {response.request.url}")
                return response

        return self._retrying(attempt)

    def _retrying(self, attempt):
        """attempt() until it returns, at most self.attempts times: after a transient failure wait
        backoff, 2 backoff, 4 backoff ... (capped), then try again; the last one becomes a CatalogError."""
        for number in range(1, self.attempts + 1):
            try:
                return attempt()
            except TransientError as error:
                if number == self.attempts:
                    raise CatalogError(f"{error.what} after {number} attempt(s): {error.advice}") from None
                time.sleep(min(self.backoff * 2 ** (number - 1), MAX_BACKOFF_SECONDS))

    @contextlib.contextmanager
    def _request(self, method: str, url: str, **kwargs):
        """A streamed response, closed on exit. A dropped connection or a timeout, on connecting or while
        the caller reads the body, is a TransientError; any other transport failure a CatalogError."""
        try:
            response = self.http.send(self.http.build_request(method, url, **kwargs), stream=True)
        except httpx.ConnectError as error:
            reason = "connection refused" if "refused" in str(error).lower() else str(error) or type(error).__name__
            raise TransientError(f"catalog at {self.base_url} is unreachable ({reason})",
                                 "start it with make serve or check the URL") from None
        except httpx.TimeoutException:
            raise TransientError(f"catalog at {self.base_url} did not answer in time",
                                 "check that it is running and not overloaded, or pass a larger timeout") from None
        except RETRIED_TRANSPORT_ERRORS as error:
            raise TransientError(f"{method} {url} failed ({type(error).__name__}: {error})", "re-run") from None
        except httpx.HTTPError as error:
            raise CatalogError(f"{method} {url} failed ({type(error).__name__}: {error})") from None
        try:
            yield response
        except RETRIED_TRANSPORT_ERRORS as error:  # the body broke off or stalled while the caller read it
            raise TransientError(f"{method} {url} broke off ({type(error).__name__}: {error})",
                                 "re-run to resume from the bytes already received") from None
        except httpx.HTTPError as error:
            raise CatalogError(f"{method} {url} broke off ({type(error).__name__}: {error}): re-run") from None
        finally:
            response.close()

    def _failure(self, response: httpx.Response, what: str) -> Exception:
        """The error for an unexpected answer: a 5xx is transient (retried), anything else is final."""
        if response.status_code >= 500:
            return TransientError(f"{what} answered {response.status_code}", self._detail(response))
        return CatalogError(f"{what} answered {response.status_code}: {self._detail(response)}")

    @staticmethod
    def _detail(response: httpx.Response) -> str:
        """The server's {"detail": ...} if it sent one, else the status text; plus the fix for 401."""
        try:
            detail = response.json().get("detail", response.reason_phrase)
        except ValueError:
            detail = response.reason_phrase
        if response.status_code == 401:
            detail = f"{detail} (pass token= or set {TOKEN_ENV})"
        return str(detail)
