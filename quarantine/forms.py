"""Forms for the admin's action pages (the API has its own serializers).

Called by: quarantine/admin.py.
"""

from __future__ import annotations

import json

from django import forms

from .models import QuarantineRecord
from .sources import FILE_RELEASE_MODES

REASON_HELP = "Recorded in the audit trail."
MODE_LABELS = {
    "valid_rows": "Load the valid rows, drop the rejected ones",
    "as_is": "Load every row as-is (override the rules; a reason is required)",
}
MODE_CHOICES = [(mode, MODE_LABELS[mode]) for mode in FILE_RELEASE_MODES]
MAX_UPLOAD_BYTES = 200 * 1024 * 1024


class ReleaseForm(forms.Form):
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 80}), help_text=REASON_HELP)
    mode = forms.ChoiceField(choices=MODE_CHOICES, initial="valid_rows", widget=forms.RadioSelect,
                             required=False, help_text="Files only.")

    def __init__(self, *args, record: QuarantineRecord | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if record is not None and record.source != QuarantineRecord.Source.FILE:
            del self.fields["mode"]

    def clean(self):
        data = super().clean()
        if data.get("mode") == "as_is" and not (data.get("reason") or "").strip():
            self.add_error("reason", "A reason is required to load a file as-is.")
        return data


class ReprocessForm(forms.Form):
    payload = forms.CharField(
        required=False, strip=False,
        widget=forms.Textarea(attrs={"rows": 14, "cols": 100, "class": "vLargeTextField", "spellcheck": "false"}),
        help_text="The message as it will be re-driven to its original topic. Fix the highlighted fields.",
    )
    content = forms.FileField(required=False, help_text="A corrected file; leave empty to run the original again.")
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 80}), help_text=REASON_HELP)

    def __init__(self, *args, record: QuarantineRecord, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.record = record
        if record.source == QuarantineRecord.Source.FILE:
            del self.fields["payload"]
        else:
            del self.fields["content"]
            if record.source == QuarantineRecord.Source.TASK:
                self.fields["payload"].help_text = 'The task\'s {"args": [...], "kwargs": {...}}.'
            if not self.is_bound:
                self.fields["payload"].initial = _editable_payload(record)

    def clean_payload(self) -> bytes | None:
        text = self.cleaned_data.get("payload") or ""
        if not text.strip():
            return None
        raw = text.encode("utf-8")
        original = bytes(self.record.payload or b"")
        if self.record.source == QuarantineRecord.Source.TASK or _is_json(original):
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise forms.ValidationError(f"Not valid JSON: {exc}") from None
            if _is_json(original) and json.loads(original) == value:
                return None  # unchanged: re-drive the original bytes as they were
            raw = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return None if raw == original else raw

    def clean_content(self):
        """The uploaded file itself, not its bytes: the service streams it to disk."""
        upload = self.cleaned_data.get("content")
        if not upload:
            return None
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
        return upload


class DiscardForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2, "cols": 80}),
                             help_text="Required. The original is kept for the retention period, then purged.")


class BulkActionForm(forms.Form):
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 80}), help_text=REASON_HELP)
    mode = forms.ChoiceField(choices=MODE_CHOICES, initial="valid_rows", widget=forms.RadioSelect, required=False,
                             help_text="For files in the selection.")

    def __init__(self, *args, action: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.action = action
        if action != "release":
            del self.fields["mode"]
        if action == "discard":
            self.fields["reason"].required = True
            self.fields["reason"].help_text = "Required. The originals are kept for the retention period, then purged."

    def clean(self):
        data = super().clean()
        if data.get("mode") == "as_is" and not (data.get("reason") or "").strip():
            self.add_error("reason", "A reason is required to load files as-is.")
        return data


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


def _editable_payload(record: QuarantineRecord) -> str:
    text = record.payload_text(limit=1_000_000)
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text
