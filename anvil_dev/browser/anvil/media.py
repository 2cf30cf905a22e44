"""Media in the browser: what the server sends (a download URL), what the page makes (bytes, files)."""

from browser import window


class Media:
    content_type = None
    name = None

    def get_url(self, download=True):
        raise NotImplementedError

    def get_bytes(self):
        raise NotImplementedError

    def get_length(self):
        return len(self.get_bytes())

    @property
    def length(self):
        return self.get_length()

    url = property(lambda self: self.get_url())


class URLMedia(Media):
    def __init__(self, url, content_type=None, name=None):
        self._url = url
        self.content_type = content_type
        self.name = name

    def get_url(self, download=True):
        return self._url

    def get_bytes(self):
        xhr = window.XMLHttpRequest.new()
        xhr.open("GET", self._url, False)
        xhr.overrideMimeType("text/plain; charset=x-user-defined")
        xhr.send()
        text = xhr.responseText
        return bytes([ord(c) & 0xFF for c in text])


class BlobMedia(Media):
    def __init__(self, content_type, content, name=None):
        self.content_type = content_type
        self._bytes = bytes(content) if not isinstance(content, str) else content.encode()
        self.name = name
        self._blob = None

    def get_bytes(self):
        return self._bytes

    def _js_blob(self):
        if self._blob is None:
            arr = window.Uint8Array.new(list(self._bytes))
            self._blob = window.Blob.new([arr], {"type": self.content_type or "application/octet-stream"})
        return self._blob

    def get_url(self, download=True):
        return window.URL.createObjectURL(self._js_blob())


def _wire_entry(media):
    if isinstance(media, URLMedia):
        blob = window.Blob.new([window.Uint8Array.new(list(media.get_bytes()))],
                               {"type": media.content_type or "application/octet-stream"})
    else:
        blob = media._js_blob()
    return {"type": ["DataMedia"], "mime-type": media.content_type, "name": media.name, "_blob": blob}


def _read_files(file_list, done):
    files = [file_list.item(i) for i in range(file_list.length)]
    out = []

    def next_file(*a):
        if len(out) == len(files):
            done(out)
            return
        f = files[len(out)]

        def loaded(buf):
            # `from` is a Python keyword: reach Array.from with getattr.
            data = bytes(list(getattr(window.Array, "from")(window.Uint8Array.new(buf))))
            out.append(BlobMedia(f.type or "application/octet-stream", data, name=f.name))
            next_file()
        f.arrayBuffer().then(loaded)

    next_file()


def download(media):
    a = window.document.createElement("a")
    a.href = media.get_url()
    a.download = media.name or "download"
    window.document.body.appendChild(a)
    a.click()
    a.remove()
