#!/usr/bin/env python3
"""Steno's OpenAI-compatible API (`/v1`) through the real, unmodified `openai` Python SDK.

Run by scripts/openai-sdk-test.sh against a live `steno serve` with two models: `tiny.en` (English-only, the
default, so also `whisper-1`) and `base` (multilingual Whisper base). Environment: STENO_BASE_URL (the server's
base URL; `/v1` is added here) and STENO_KEY (an API key it accepts).

Audio is real speech from Debian packages: a LibriVox reading from pocketsphinx-testdata (English) and an
Asterisk prompt from asterisk-core-sounds-es-wav (Spanish, 8 kHz telephone audio), each with its reference
transcript. Transcripts are compared by words (lowercase, no punctuation, no accents).

Plain unittest; one line per test; exits non-zero on any failure.
"""

import gzip
import http.client
import os
import random
import re
import sys
import time
import unicodedata
import urllib.parse
import uuid
import unittest
import warnings

import openai
from openai.types.audio import Transcription, TranscriptionVerbose, Translation, TranslationVerbose

BASE = os.environ.get("STENO_BASE_URL", "").rstrip("/")
KEY = os.environ.get("STENO_KEY", "")

LIBRIVOX = "/usr/share/pocketsphinx/test/data/librivox"
ENGLISH_WAV = f"{LIBRIVOX}/sense_and_sensibility_01_austen_64kb-0870.wav"  # 7.1 s, 16 kHz
ENGLISH_ID = "sense_and_sensibility_01_austen_64kb-0870"
SPANISH_WAV = "/usr/share/asterisk/sounds/es/vm-intro.wav"  # 7.3 s, 8 kHz
SPANISH_ID = "vm-intro"
SPANISH_TRANSCRIPTS = "/usr/share/doc/asterisk-core-sounds-es/core-sounds-es.txt.gz"
# Words an English rendering of the Spanish prompt ("Please leave your message after the tone. When you are
# done, hang up or press the number key.") is bound to contain some of.
TRANSLATION_WORDS = {"please", "leave", "your", "message", "after", "tone", "hang", "press", "key", "number", "finish", "finished", "done"}

# Whisper writes abbreviations and numerals where the references spell words out.
SPELLINGS = {"mr": "mister", "mrs": "missus"}


def words(text):
    """Lowercase words without punctuation or accents ("Número," -> "numero")."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return [SPELLINGS.get(w, w) for w in re.findall(r"[a-z0-9']+", text.replace("'", ""))]


def coverage(reference, hypothesis):
    """The fraction of the reference's words that the hypothesis contains."""
    ref = words(reference)
    hyp = set(words(hypothesis))
    return sum(1 for w in ref if w in hyp) / len(ref) if ref else 0.0


def english_reference():
    with open(f"{LIBRIVOX}/transcription", encoding="utf-8") as f:
        for line in f:
            if f"({ENGLISH_ID})" in line:
                return re.sub(r"</?s>|\(.*\)", "", line).strip()
    raise RuntimeError(f"no transcript of {ENGLISH_ID} in {LIBRIVOX}/transcription")


def spanish_reference():
    with gzip.open(SPANISH_TRANSCRIPTS, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            name, sep, text = line.partition(":")
            if sep and name.strip() == SPANISH_ID:
                return text.strip()
    raise RuntimeError(f"no transcript of {SPANISH_ID} in {SPANISH_TRANSCRIPTS}")


def client(api_key=None):
    return openai.OpenAI(base_url=BASE + "/v1", api_key=api_key or KEY, max_retries=0, timeout=300)


class OpenAISDKTests(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        if not BASE or not KEY:
            raise RuntimeError("set STENO_BASE_URL and STENO_KEY (scripts/openai-sdk-test.sh does)")
        for path in (ENGLISH_WAV, SPANISH_WAV, SPANISH_TRANSCRIPTS):
            if not os.path.exists(path):
                raise RuntimeError(f"{path} is missing: make setup (or apt-get install -y pocketsphinx-testdata asterisk-core-sounds-es-wav asterisk-core-sounds-es)")
        cls.client = client()
        cls.english = english_reference()
        cls.spanish = spanish_reference()

    # -- helpers

    def transcribe(self, path=ENGLISH_WAV, **kwargs):
        kwargs.setdefault("model", "whisper-1")
        with open(path, "rb") as f:
            return self.client.audio.transcriptions.create(file=f, **kwargs)

    def translate(self, path=SPANISH_WAV, **kwargs):
        with open(path, "rb") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the SDK marks translations deprecated
            return self.client.audio.translations.create(file=f, **kwargs)

    def assertMatches(self, text, reference, minimum):
        self.assertIsInstance(text, str)
        score = coverage(reference, text)
        self.assertGreaterEqual(score, minimum, f"only {score:.0%} of the reference's words in {text!r} (reference: {reference!r})")

    def assertOpenAIError(self, error, status, code=None):
        """An error in OpenAI's shape: the SDK unwraps `{"error": {...}}` into `e.body`."""
        self.assertEqual(error.status_code, status, error)
        body = error.body
        self.assertIsInstance(body, dict, f"error body is not OpenAI's JSON object: {body!r}")
        self.assertIsInstance(body.get("message"), str, body)
        self.assertTrue(body["message"], body)
        self.assertIn("type", body)
        self.assertIn("code", body)
        self.assertIn("param", body)  # OpenAI sends it, null when no field is at fault
        self.assertTrue(body["code"], body)
        self.assertEqual(error.code, body["code"])
        if code is not None:
            self.assertEqual(body["code"], code, body)
        raw = error.response.json()
        self.assertEqual(raw.get("error"), body, f"the SDK's body is not the response's `error`: {raw!r}")
        return body

    def assertSegments(self, segments, duration):
        self.assertIsInstance(segments, list)
        self.assertTrue(segments, "no segments")
        previous_end = 0.0
        for i, segment in enumerate(segments):
            dump = segment.model_dump(exclude_unset=True)
            for field in ("id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob"):
                self.assertIn(field, dump, f"segment {i} lacks {field}: {dump}")
            self.assertIsInstance(dump["id"], int)
            self.assertIsInstance(dump["seek"], int)
            self.assertIsInstance(dump["tokens"], list)
            self.assertTrue(all(isinstance(t, int) for t in dump["tokens"]), dump["tokens"])
            self.assertLessEqual(segment.start, segment.end, dump)
            self.assertGreaterEqual(segment.start, previous_end - 0.5, f"segment {i} starts before the previous one ends: {dump}")
            self.assertLessEqual(segment.end, duration + 1.0, f"segment {i} ends after the recording: {dump}")
            self.assertGreaterEqual(segment.no_speech_prob, 0.0)
            self.assertLessEqual(segment.no_speech_prob, 1.0)
            self.assertLessEqual(segment.avg_logprob, 0.0)
            previous_end = segment.end
        self.assertEqual([s.id for s in segments], list(range(len(segments))), "segment ids are not 0, 1, 2, …")

    def assertWords(self, items, duration):
        self.assertIsInstance(items, list)
        self.assertTrue(items, "no words")
        previous_start = 0.0
        for i, word in enumerate(items):
            dump = word.model_dump(exclude_unset=True)
            for field in ("word", "start", "end"):
                self.assertIn(field, dump, f"word {i} lacks {field}: {dump}")
            self.assertTrue(word.word.strip(), f"word {i} is empty: {dump}")
            self.assertEqual(word.word, word.word.strip(), f"word {i} has surrounding spaces: {dump}")
            self.assertLessEqual(word.start, word.end, dump)
            self.assertGreaterEqual(word.start, previous_start - 0.2, f"word {i} starts before the previous word: {dump}")
            self.assertLessEqual(word.end, duration + 1.0, f"word {i} ends after the recording: {dump}")
            previous_start = word.start

    # -- transcriptions: the response formats

    def test_json_default(self):
        result = self.transcribe()
        self.assertIsInstance(result, Transcription)
        self.assertMatches(result.text, self.english, 0.8)
        dump = result.model_dump(exclude_unset=True)
        if "usage" in dump and dump["usage"] is not None:
            self.assertEqual(dump["usage"].get("type"), "duration", dump)
            self.assertGreaterEqual(dump["usage"]["seconds"], 7, dump)  # the clip is 7.1 s

    def test_json_explicit(self):
        result = self.transcribe(response_format="json")
        self.assertIsInstance(result, Transcription)
        self.assertMatches(result.text, self.english, 0.8)

    def test_text(self):
        result = self.transcribe(response_format="text")
        self.assertIsInstance(result, str)
        self.assertFalse(result.lstrip().startswith("{"), f"text came as JSON: {result!r}")
        self.assertMatches(result, self.english, 0.8)

    def test_srt(self):
        result = self.transcribe(response_format="srt")
        self.assertIsInstance(result, str)
        self.assertTrue(result.lstrip().startswith("1"), f"SRT does not start with cue 1: {result!r}")
        self.assertIn("-->", result)
        timings = re.findall(r"(\d\d:\d\d:\d\d[,.]\d\d\d) --> (\d\d:\d\d:\d\d[,.]\d\d\d)", result)
        self.assertTrue(timings, f"no SRT timings: {result!r}")
        for start, end in timings:
            self.assertIn(",", start, f"SRT times use ',' before the milliseconds: {start}")
            self.assertIn(",", end, f"SRT times use ',' before the milliseconds: {end}")
        spoken = "\n".join(line for line in result.splitlines() if "-->" not in line and not line.strip().isdigit())
        self.assertMatches(spoken, self.english, 0.8)

    def test_vtt(self):
        result = self.transcribe(response_format="vtt")
        self.assertIsInstance(result, str)
        self.assertTrue(result.startswith("WEBVTT"), f"VTT does not start with WEBVTT: {result!r}")
        timings = re.findall(r"([\d:.,]+) --> ([\d:.,]+)", result)
        self.assertTrue(timings, f"no VTT timings: {result!r}")
        for start, end in timings:
            for time_ in (start, end):
                self.assertRegex(time_, r"^(\d\d+:)?\d\d:\d\d\.\d\d\d$", f"VTT times are [hh:]mm:ss.ttt: {start} --> {end}")
        spoken = "\n".join(line for line in result.splitlines()[1:] if "-->" not in line)
        self.assertMatches(spoken, self.english, 0.8)

    # -- verbose_json and timestamp_granularities

    def test_verbose_json(self):
        result = self.transcribe(response_format="verbose_json")
        self.assertIsInstance(result, TranscriptionVerbose)
        dump = result.model_dump(exclude_unset=True)
        self.assertEqual(result.language, "english", dump.get("language"))
        self.assertGreater(result.duration, 6.5, "the clip is 7.1 s")
        self.assertLess(result.duration, 7.7, "the clip is 7.1 s")
        if "task" in dump:
            self.assertEqual(dump["task"], "transcribe")
        self.assertMatches(result.text, self.english, 0.8)
        self.assertSegments(result.segments, result.duration)
        self.assertIsNone(dump.get("words"), "words without timestamp_granularities=word")
        self.assertMatches(" ".join(s.text for s in result.segments), self.english, 0.8)

    def test_verbose_json_segment_granularity(self):
        result = self.transcribe(response_format="verbose_json", timestamp_granularities=["segment"])
        dump = result.model_dump(exclude_unset=True)
        self.assertSegments(result.segments, result.duration)
        self.assertIsNone(dump.get("words"), "words with timestamp_granularities=[segment]")
        self.assertMatches(result.text, self.english, 0.8)

    def test_verbose_json_word_granularity(self):
        result = self.transcribe(response_format="verbose_json", timestamp_granularities=["word"])
        self.assertWords(result.words, result.duration)
        self.assertIsNone(result.segments, "segments with timestamp_granularities=[word] (OpenAI sends null)")
        self.assertMatches(" ".join(w.word for w in result.words), self.english, 0.8)
        self.assertMatches(result.text, self.english, 0.8)

    def test_verbose_json_word_and_segment_granularity(self):
        result = self.transcribe(response_format="verbose_json", timestamp_granularities=["word", "segment"])
        self.assertSegments(result.segments, result.duration)
        self.assertWords(result.words, result.duration)
        first = min(s.start for s in result.segments)
        last = max(s.end for s in result.segments)
        for word in result.words:
            self.assertGreaterEqual(word.start, first - 0.5, f"{word} starts before the segments ({first})")
            self.assertLessEqual(word.end, last + 0.5, f"{word} ends after the segments ({last})")
        self.assertMatches(" ".join(w.word for w in result.words), self.english, 0.8)

    def test_word_granularity_needs_verbose_json(self):
        with self.assertRaises(openai.BadRequestError) as caught:
            self.transcribe(response_format="json", timestamp_granularities=["word"])
        self.assertOpenAIError(caught.exception, 400)

    # -- models

    def test_whisper_1_is_the_default_model(self):
        result = self.transcribe(model="whisper-1", response_format="verbose_json")
        self.assertEqual(result.language, "english")
        self.assertMatches(result.text, self.english, 0.8)

    def test_served_model_by_name(self):
        result = self.transcribe(model="tiny.en")
        self.assertMatches(result.text, self.english, 0.8)

    def test_spanish_on_base(self):
        result = self.transcribe(SPANISH_WAV, model="base", language="es")
        self.assertMatches(result.text, self.spanish, 0.6)

    def test_language_detection_on_base(self):
        result = self.transcribe(SPANISH_WAV, model="base", response_format="verbose_json")
        self.assertEqual(result.language, "spanish", result.text)
        self.assertMatches(result.text, self.spanish, 0.6)

    def test_unknown_model(self):
        with self.assertRaises(openai.NotFoundError) as caught:
            self.transcribe(model="no-such-model")
        body = self.assertOpenAIError(caught.exception, 404, "model_not_found")
        self.assertEqual(body["type"], "invalid_request_error", body)

    def test_models_list(self):
        ids = [m.id for m in self.client.models.list()]
        for name in ("tiny.en", "base", "whisper-1"):
            self.assertIn(name, ids)
        self.assertEqual(len(ids), len(set(ids)), f"duplicate ids: {ids}")
        for model in self.client.models.list().data:
            self.assertEqual(model.object, "model")
            self.assertIsInstance(model.created, int)
            self.assertIsInstance(model.owned_by, str)

    def test_models_retrieve(self):
        model = self.client.models.retrieve("base")
        self.assertEqual(model.id, "base")
        self.assertEqual(model.object, "model")
        self.assertEqual(self.client.models.retrieve("whisper-1").id, "whisper-1")
        self.assertEqual(self.client.models.retrieve("tiny.en").id, "tiny.en")
        with self.assertRaises(openai.NotFoundError) as caught:
            self.client.models.retrieve("no-such-model")
        self.assertOpenAIError(caught.exception, 404, "model_not_found")

    # -- translations

    def test_translation(self):
        result = self.translate(model="base")
        self.assertIsInstance(result, Translation)
        text = result.text.strip()
        self.assertTrue(text, "empty translation")
        ascii_share = sum(1 for c in text if ord(c) < 128) / len(text)
        self.assertGreaterEqual(ascii_share, 0.95, f"not English: {text!r}")
        self.assertLess(coverage(self.spanish, text), 0.5, f"the translation is the Spanish transcript: {text!r}")
        found = TRANSLATION_WORDS & set(words(text))
        self.assertGreaterEqual(len(found), 2, f"not an English rendering of {self.spanish!r}: {text!r}")

    def test_translation_verbose_json(self):
        result = self.translate(model="base", response_format="verbose_json")
        self.assertIsInstance(result, TranslationVerbose)
        dump = result.model_dump(exclude_unset=True)
        # The SDK's TranslationVerbose: "The language of the output translation (always `english`)".
        self.assertEqual(result.language, "english", dump.get("language"))
        if "task" in dump:
            self.assertEqual(dump["task"], "translate")
        self.assertSegments(result.segments, result.duration)
        self.assertLess(coverage(self.spanish, result.text), 0.5, result.text)

    def test_translation_text(self):
        result = self.translate(model="base", response_format="text")
        self.assertIsInstance(result, str)
        self.assertTrue(result.strip())
        self.assertLess(coverage(self.spanish, result), 0.5, result)

    def test_translation_on_english_only_model(self):
        with self.assertRaises(openai.BadRequestError) as caught:
            self.translate(model="tiny.en")
        body = self.assertOpenAIError(caught.exception, 400)
        self.assertEqual(body["type"], "invalid_request_error", body)

    # -- errors

    def test_undecodable_file(self):
        noise = random.Random(20261129).randbytes(16384)
        with self.assertRaises(openai.BadRequestError) as caught:
            self.client.audio.transcriptions.create(model="whisper-1", file=("noise.wav", noise, "audio/wav"))
        body = self.assertOpenAIError(caught.exception, 400)
        self.assertEqual(body["type"], "invalid_request_error", body)

    def test_wrong_key(self):
        wrong = client("wrong")
        with self.assertRaises(openai.AuthenticationError) as caught:
            with open(ENGLISH_WAV, "rb") as f:
                wrong.audio.transcriptions.create(model="whisper-1", file=f)
        self.assertOpenAIError(caught.exception, 401, "invalid_api_key")
        with self.assertRaises(openai.AuthenticationError) as caught:
            wrong.models.list()
        self.assertOpenAIError(caught.exception, 401, "invalid_api_key")

    # -- the connection

    def test_connection_reuse_after_transcription(self):
        """The SDK's HTTP client keeps connections alive and sends its next request on the same one. So after an
        answer the server must either keep serving the connection or say `Connection: close`; closing it
        silently makes the client's next request fail at random with `APIConnectionError` ("Server disconnected
        without sending a response"), which `max_retries` only hides. Checked with the standard library on one
        connection, so that the outcome does not depend on timing."""
        url = urllib.parse.urlsplit(BASE)
        connection = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=300)
        boundary = uuid.uuid4().hex
        with open(ENGLISH_WAV, "rb") as f:
            audio = f.read()
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="speech.wav"\r\n'
                "Content-Type: audio/wav\r\n\r\n").encode() + audio + f"\r\n--{boundary}--\r\n".encode()
        headers = {"Authorization": f"Bearer {KEY}"}
        try:
            connection.request("POST", url.path + "/v1/audio/transcriptions", body=body,
                               headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"})
            response = connection.getresponse()
            response.read()
            self.assertEqual(response.status, 200)
            if "close" in (response.getheader("connection") or "").lower():
                return  # the client opens a new connection, as it was told
            try:
                connection.request("GET", url.path + "/v1/models", headers=headers)
                second = connection.getresponse()
                second.read()
            except (http.client.RemoteDisconnected, ConnectionError) as error:
                self.fail(f"the server closed the connection after a transcription without `Connection: close`: {error!r}")
            self.assertEqual(second.status, 200)
        finally:
            connection.close()

    # -- streaming

    def test_stream_gives_a_delta_per_window(self):
        """stream=True on a recording of two 30 s windows: deltas as windows are decoded, then done."""
        import tempfile
        import wave
        clips = sorted(f for f in os.listdir(LIBRIVOX) if f.endswith(".wav"))
        with tempfile.NamedTemporaryFile(suffix=".wav", delete=False) as out:
            path = out.name
        try:
            with wave.open(path, "wb") as joined:
                for round_ in range(2):  # 2 x 24.7 s: two windows
                    for clip in clips:
                        with wave.open(f"{LIBRIVOX}/{clip}", "rb") as part:
                            if round_ == 0 and clip == clips[0]:
                                joined.setparams(part.getparams())
                            joined.writeframes(part.readframes(part.getnframes()))
            with open(path, "rb") as f:
                stream = self.client.audio.transcriptions.create(file=f, model="whisper-1", stream=True)
                events = list(stream)
        finally:
            os.unlink(path)
        types = [e.type for e in events]
        self.assertEqual(types[-1], "transcript.text.done", types)
        deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
        self.assertGreaterEqual(len(deltas), 2, f"one delta per window expected: {deltas}")
        done = events[-1]
        self.assertEqual("".join(deltas).strip(), done.text)
        references = []
        with open(f"{LIBRIVOX}/transcription", encoding="utf-8") as f:
            references = [re.sub(r"</?s>|\(.*\)", "", line).strip() for line in f if line.strip()]
        self.assertMatches(done.text, " ".join(references), 0.8)

    # -- options

    def test_temperature(self):
        result = self.transcribe(temperature=0.3)
        self.assertMatches(result.text, self.english, 0.6)

    def test_prompt(self):
        result = self.transcribe(prompt="Mr. John Dashwood, from Sense and Sensibility by Jane Austen.")
        self.assertMatches(result.text, self.english, 0.8)


class OneLineResult(unittest.TextTestResult):
    """One line per test: PASS/FAIL/ERROR, its name and time, and the reason of a failure."""

    def startTest(self, test):
        self._started = time.monotonic()
        unittest.TestResult.startTest(self, test)

    def _line(self, status, test, detail=""):
        elapsed = time.monotonic() - self._started
        self.stream.write(f"{status:5} {test._testMethodName} ({elapsed:.1f} s){detail}\n")
        self.stream.flush()

    def addSuccess(self, test):
        unittest.TestResult.addSuccess(self, test)
        self._line("PASS", test)

    def addFailure(self, test, err):
        unittest.TestResult.addFailure(self, test, err)
        self._line("FAIL", test, ": " + str(err[1]).splitlines()[0][:300])

    def addError(self, test, err):
        unittest.TestResult.addError(self, test, err)
        self._line("ERROR", test, f": {err[0].__name__}: " + (str(err[1]).splitlines() or [""])[0][:300])

    def addSkip(self, test, reason):
        unittest.TestResult.addSkip(self, test, reason)
        self._line("SKIP", test, ": " + reason)


def main():
    print(f"openai SDK {openai.__version__} against {BASE}/v1", flush=True)
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(OpenAISDKTests)
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=0, resultclass=OneLineResult)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors)
    print(f"openai SDK test: {result.testsRun - failed} passed, {failed} failed", flush=True)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
