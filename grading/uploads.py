"""The upload cap while the request body streams in (the web form and the API)."""

from __future__ import annotations

from django.core.files.uploadhandler import FileUploadHandler, StopUpload

UPLOAD_TOO_LARGE = "The upload is larger than the {mb:g} MB limit."


class CappedUploadHandler(FileUploadHandler):
    """Stops reading an upload as soon as it passes the size cap, before it is
    stored anywhere (the store counts again while the upload streams into it)."""

    def __init__(self, request=None, cap: int = 0):
        super().__init__(request)
        self.cap = cap
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.cap:
            self.request.upload_too_large = True  # type: ignore[union-attr]  # read by the view
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size):
        return None
