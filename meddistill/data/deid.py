"""De-identification of DICOM datasets (PS3.15 Annex E, Basic Profile).

The attribute table below is DICOM PS3.15 Table E.1-1 (2023 edition), Basic
Application Level Confidentiality Profile column, written as tag numbers to keep
this module short; ``BASIC_PROFILE_TAGS`` resolves them to keywords at import.
Where the standard offers a choice of actions we take the strictest one that keeps
the file readable:

* ``Z`` and ``Z/D``: keep the attribute with a zero-length value.
* ``X/Z`` and ``X/Z/D``: zero-length value (sequences are removed).
* ``X/D`` and ``X``: remove.
* ``D``: dummy value of the right VR (sequences are removed, UIDs remapped).
* ``U``: remap the UID deterministically (``UID_TAGS``).

On top of the table: every private element is removed, overlay (60xx) and curve
(50xx) groups are removed, every other PN/DA/DT/TM element is removed, and every
other UI value that is not a registered DICOM UID (or a class/syntax UID) is
remapped. Pixel data is not examined: burned-in text is not removed.
"""

from __future__ import annotations

import copy
import os
import tempfile
import uuid
from pathlib import Path

import pydicom
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID

from meddistill.errors import DataError

_X = """
00001000 00080012 00080015 00080021 00080024 00080025 00080031 00080034 00080035
00080054 00080055 00080081 00080082 00080092 00080094 00080096 0008009D 00080201
00081000 00081030 0008103E 00081040 00081041 00081048 00081049 00081050 00081052
00081060 00081062 00081072 00081080 00081084 00081088 00081110 00081111 00081120
00082111 00084000 00100021 00100032 00100050 00100101 00100102 00101000 00101001
00101002 00101005 00101010 00101020 00101030 00101040 00101050 00101060 00101080
00101081 00101090 00101100 00102000 00102110 00102150 00102152 00102154 00102155
00102160 00102180 001021A0 001021B0 001021C0 001021D0 001021F0 00102297 00102299
00104000 00120051 00120071 00120072 00120082 00120086 00120087 0014407C 0014407E
0016002B 0016004B 0016004D 0016004E 0016004F 00160050 00160051 00160070 00160071
00160072 00160073 00160074 00160075 00160076 00160077 00160078 00160079 0016007A
0016007B 0016007C 0016007D 0016007E 0016007F 00160080 00160081 00160082 00160083
00160084 00160085 00160086 00160087 00160088 00160089 0016008A 0016008B 0016008C
0016008D 0016008E 00180027 00180035 00181004 00181005 00181007 00181008 00181009
0018100A 00181012 00181014 00181030 00181042 00181043 00181072 00181073 00181078
00181079 00181200 00181201 00181202 00181204 00181205 00181400 00184000 00185011
0018700A 0018700C 0018700E 00189185 00189373 0018937B 0018937F 00189424 00189516
00189517 00189937 0018A002 0018A003 00200027 00203401 00203403 00203405 00203406
00204000 00209158 00284000 00320012 00320032 00320033 00320034 00320035 00321000
00321001 00321010 00321011 00321020 00321021 00321030 00321032 00321033 00321040
00321041 00321050 00321051 00321066 00321067 00321070 00324000 00340001 00380004
00380010 00380011 00380014 0038001A 0038001B 0038001C 0038001D 0038001E 00380020
00380021 00380030 00380032 00380040 00380050 00380060 00380061 00380062 00380064
00380300 00380400 00380500 00384000 003A0329 003A032B 00400001 00400002 00400003
00400004 00400005 00400006 00400007 00400009 0040000B 00400010 00400011 00400012
00400241 00400242 00400243 00400244 00400245 00400250 00400251 00400253 00400254
00400275 00400280 00400310 0040050A 0040051A 00400555 00400600 00400602 004006FA
00401001 00401002 00401004 00401005 0040100A 00401010 00401011 00401101 00401102
00401103 00401104 00401400 00402001 00402004 00402005 00402008 00402009 00402010
00402011 00402400 00403001 00404005 00404008 00404010 00404011 00404025 00404027
00404028 00404030 00404034 00404035 00404036 00404037 00404050 00404051 00404052
0040A023 0040A024 0040A032 0040A033 0040A073 0040A078 0040A07A 0040A07C 0040A110
0040A112 0040A192 0040A193 0040A307 0040A352 0040A353 0040A354 0040A358 0040A730
0040DB06 0040DB07 0040E004 00440004 0044000B 00440010 00440105 0050001B 00500020
00500021 006A0006 00700001 00700082 00700083 00700086 00741234 00741236 00880200
00880904 00880906 00880910 00880912 01000420 04000310 04000402 04000403 04000404
04000550 04000551 04000552 04000561 04000600 20300020 21000040 21000050 21000070
30020121 30020123 30060004 30060006 30060028 30060038 30060085 30060088 30080054
30080056 30080250 30080251 300A0003 300A0004 300A0006 300A0007 300A000B 300A000E
300A0016 300A0072 300A00C3 300A00DD 300A0196 300A01A6 300A01B2 300A0216 300A02EB
300A0676 300A078E 300A0792 300A0794 300A079A 300C0113 30100036 30100037 3010004C
3010004D 30100056 30100061 30100077 30100085 40000010 40004000 40080040 40080042
40080100 40080101 40080102 40080108 40080109 4008010A 4008010B 4008010C 40080111
40080112 40080113 40080114 40080115 40080118 40080119 4008011A 40080200 40080202
40080300 40084000 FFFAFFFA FFFCFFFC
"""
_Z = """
00080013 00080020 00080022 00080023 0008002A 00080030 00080032 00080033 00080050
00080080 00080090 0008009C 00081010 00081070 00100010 00100020 00100030 00100040
00102203 00120021 00120030 00120031 00120050 00120060 00180010 00181000 00181203
00189919 00200010 00321060 00400513 00400562 00400610 00402016 00402017 0040A082
0040A088 00700084 04000564 22000002 22000005 30060008 30060009 30060026 300600A6
30080105 300A00B2 300A0611 300A0615 300A067D 300E0004 300E0005 300E0008 3010000F
30100017 3010001B 30100043 3010005A 3010005C 3010007A 3010007B 3010007F 30100081
"""
_D = """
00080106 00080107 00120010 00120020 00120040 00120042 00120081 001811BB 00189074
00189151 00189367 00189369 0018936A 00189371 00189623 00189701 00189804 00340002
00340005 00340007 003A0314 00400512 00400551 0040A027 0040A030 0040A075 0040A120
0040A121 0040A122 0040A123 0040A13A 00420011 00440104 00686226 00686270 006A0005
0072000A 0072005E 0072005F 00720061 00720063 00720065 00720066 00720068 0072006A
0072006B 0072006C 0072006D 0072006E 00720070 00720071 04000105 04000115 04000562
04000563 04000565 21000140 30060002 30080024 30080025 30080162 30080164 30080166
30080168 300A0002 300A022C 300A022E 300A0608 300A0619 300A0623 300A062A 300A067C
300A0734 300A0736 300A073A 300A0741 300A0742 300A0760 300A0783 300C0127 3010002D
30100033 30100034 30100035 30100038 30100054
"""
_U = """
00001001 00020003 00041511 00080014 00080017 00080018 00080019 00080058 00081155
00081195 00083010 00181002 0018100B 00182042 0020000D 0020000E 00200052 00200200
00209161 00209164 00281199 00281214 003A0310 00400554 00404023 0040A124 0040A171
0040A172 0040A402 0040DB0C 0040DB0D 00620021 00640003 006A0003 0070031A 00701101
00701102 00880140 04000100 30060024 300600C2 300A0013 300A0083 300A0609 300A0650
300A0700 300A0785 30100006 3010000B 30100013 30100015 30100031 3010003B 3010006E
3010006F
"""

_ACTIONS: dict[int, str] = {
    int(tag, 16): action for action, table in (("X", _X), ("Z", _Z), ("D", _D), ("U", _U)) for tag in table.split()
}

BASIC_PROFILE_TAGS: dict[str, str] = {keyword_for_tag(tag): action for tag, action in _ACTIONS.items() if action != "U"}
"""Keyword -> action (``"X"`` remove, ``"Z"`` empty, ``"D"`` dummy) for every
identity-carrying attribute of the Basic Profile (UIDs are in ``UID_TAGS``)."""

UID_TAGS: frozenset[str] = frozenset(keyword_for_tag(tag) for tag, action in _ACTIONS.items() if action == "U")
"""Keywords of the UID attributes that are remapped (action ``U``)."""

SAFE_METADATA_KEYWORDS: tuple[str, ...] = tuple(
    """
    Modality BodyPartExamined ViewPosition Laterality ImageLaterality PatientPosition ImageType Rows
    Columns NumberOfFrames SamplesPerPixel PhotometricInterpretation BitsAllocated BitsStored
    PixelRepresentation PixelSpacing ImagerPixelSpacing SliceThickness SpacingBetweenSlices RescaleSlope
    RescaleIntercept RescaleType WindowCenter WindowWidth KVP ExposureTime XRayTubeCurrent
    ConvolutionKernel MagneticFieldStrength RepetitionTime EchoTime ScanningSequence Manufacturer
    ManufacturerModelName
    """.split()
)
"""Attributes ``safe_metadata`` may show: none names a person, place, date or UID."""

_DUMMY_TEXT = {
    "PN": "ANONYMOUS",
    "DA": "19000101",
    "TM": "000000",
    "DT": "19000101000000",
    "AS": "000Y",
    "IS": "0",
    "DS": "0",
}
_TEXT_VRS = {"AE", "CS", "LO", "LT", "SH", "ST", "UC", "UR", "UT"}
_NUMBER_VRS = {"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"}
_KEEP_UIDS = {"TransferSyntaxUID", "CodingSchemeUID", "MappingResourceUID", "ContextUID"}
# File meta elements naming the sending/receiving system.
_META_REMOVE = (0x00020016, 0x00020017, 0x00020018, 0x00020026, 0x00020027, 0x00020028, 0x00020100, 0x00020102)
_METHOD = "MedDistill PS3.15 Basic Profile"


def _new_uid(old: str, salt: str) -> str:
    """Map ``old`` to a ``2.25.`` UID derived from a name-based UUID of salt + UID."""
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, f'{salt}|{old}').int}"


def _remap(value, salt: str):
    if isinstance(value, (list, MultiValue)):
        return [_new_uid(str(v), salt) if v else v for v in value]
    return _new_uid(str(value), salt) if value else value


def _action_for(elem) -> str | None:
    action = _ACTIONS.get(int(elem.tag))
    if action is not None:
        return action
    if elem.VR in ("PN", "DA", "DT", "TM"):
        return "X"
    if elem.VR == "UI" and elem.value:
        keyword = elem.keyword or ""
        values = elem.value if isinstance(elem.value, MultiValue) else [elem.value]
        registered = all(UID(str(v)).keyword for v in values)
        if not (registered or keyword.endswith("ClassUID") or keyword in _KEEP_UIDS):
            return "U"
    return None


def _dummy(elem) -> bool:
    """Give ``elem`` a dummy value of its VR; return False if it must be removed."""
    if elem.VR in _DUMMY_TEXT:
        elem.value = _DUMMY_TEXT[elem.VR]
    elif elem.VR in _TEXT_VRS:
        elem.value = "ANONYMIZED"
    elif elem.VR in _NUMBER_VRS:
        elem.value = 0
    else:
        return False
    return True


def _clean(ds: Dataset, salt: str) -> None:
    """De-identify ``ds`` in place, recursing into sequence items."""
    for tag in list(ds.keys()):
        group = tag >> 16
        if tag.is_private or 0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF:
            del ds[tag]
            continue
        elem = ds[tag]
        action = _action_for(elem)
        if action == "X" or (action == "D" and not _dummy(elem)):
            del ds[tag]
        elif action == "Z":
            elem.value = Sequence() if elem.VR == "SQ" else None
        elif action == "U":
            elem.value = _remap(elem.value, salt)
        elif action is None and elem.VR == "SQ":
            for item in elem.value:
                _clean(item, salt)


def deidentify(ds: Dataset, salt: str = "meddistill") -> Dataset:
    """Return a de-identified copy of ``ds`` (PS3.15 Basic Profile, see module doc).

    Args:
        ds: Dataset to de-identify; it is not modified.
        salt: Secret mixed into the UID remapping. The same ``(salt, UID)`` always
            gives the same new UID, so series stay consistent across files; use a
            private salt, since anyone with the salt can test a guessed UID.

    Returns:
        A new dataset with identifying attributes removed, emptied or replaced,
        private tags removed, UIDs remapped, and PatientIdentityRemoved="YES".
    """
    out = copy.deepcopy(ds)
    _clean(out, salt)
    meta = getattr(out, "file_meta", None)
    if meta is not None:
        for tag in _META_REMOVE:
            meta.pop(tag, None)
        _clean(meta, salt)
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = _METHOD
    code = Dataset()
    code.CodeValue = "113100"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    out.DeidentificationMethodCodeSequence = Sequence([code])
    out.LongitudinalTemporalInformationModified = "REMOVED"
    return out


def deidentify_file(src: str | os.PathLike, dst: str | os.PathLike, salt: str = "meddistill") -> Path:
    """Read ``src``, de-identify it and write it atomically to ``dst``.

    The copy is written to a temporary file in ``dst``'s folder and moved into
    place with ``os.replace``, so ``dst`` is never left half-written.

    Args:
        src: DICOM file to read.
        dst: Output path (may equal ``src``); its folder must exist.
        salt: See ``deidentify``.

    Returns:
        The output path.

    Raises:
        DataError: ``src`` is not a readable DICOM file, or ``dst`` cannot be written.
    """
    src, dst = Path(src), Path(dst)
    try:
        ds = pydicom.dcmread(src, force=False)
    except FileNotFoundError as exc:
        raise DataError(f"{src.name} does not exist; check the path.") from exc
    except Exception as exc:
        raise DataError(f"{src.name} is not a readable DICOM file; remove it or re-export it as DICOM.") from exc
    try:
        clean = deidentify(ds, salt)
    except Exception as exc:
        raise DataError(
            f"{src.name} has attributes that could not be de-identified; re-export it from the scanner or PACS."
        ) from exc
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
        with os.fdopen(fd, "wb") as fh:
            clean.save_as(fh)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, dst)
    except Exception as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise DataError(
            f"Could not write {dst.name}; check that its folder exists and is writable, with free disk space."
        ) from exc
    return dst


def _text(value) -> str:
    if isinstance(value, (list, MultiValue)):
        return ", ".join(str(v) for v in value)
    return str(value)


def safe_metadata(ds: Dataset) -> dict[str, str]:
    """Return non-identifying display attributes of ``ds`` as strings.

    Only ``SAFE_METADATA_KEYWORDS`` that are present and non-empty are returned,
    plus ``TransferSyntax`` and ``SOPClass`` (their registered names). Never
    names, IDs, dates, times, UIDs or institutions.

    Args:
        ds: Any dataset (identified or not).

    Returns:
        Mapping of keyword to display string, in ``SAFE_METADATA_KEYWORDS`` order.
    """
    out: dict[str, str] = {}
    for keyword in SAFE_METADATA_KEYWORDS:
        try:
            value = ds.get(keyword)
            text = "" if value is None else _text(value).strip()
        except Exception:  # an invalid value is simply not shown
            continue
        if text:
            out[keyword] = text
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if syntax and UID(str(syntax)).keyword:
        out["TransferSyntax"] = UID(str(syntax)).name
    sop_class = ds.get("SOPClassUID")
    if sop_class and UID(str(sop_class)).keyword:
        out["SOPClass"] = UID(str(sop_class)).name
    return out
