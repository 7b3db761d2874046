"""Rekognition responses in the service's own shapes (botocore's Stubber validates them
against the service model), shared by the labeler's tests and bench-sync."""

LABELS_RESPONSE = {
    "Labels": [
        {
            "Name": "Dog",
            "Confidence": 97.1,
            "Instances": [{"BoundingBox": {"Width": 0.5, "Height": 0.6, "Left": 0.1, "Top": 0.2}, "Confidence": 96.0}],
            "Parents": [{"Name": "Animal"}, {"Name": "Pet"}],
            "Aliases": [{"Name": "Puppy"}],
            "Categories": [{"Name": "Animals and Pets"}],
        },
        {"Name": "Animal", "Confidence": 97.1, "Instances": [], "Parents": [], "Aliases": [], "Categories": []},
    ],
    "LabelModelVersion": "3.0",
    "ImageProperties": {
        "Quality": {"Brightness": 71.5, "Sharpness": 88.2, "Contrast": 60.0},
        "DominantColors": [
            {"Red": 10, "Green": 20, "Blue": 30, "HexCode": "#0a141e", "CSSColor": "black", "SimplifiedColor": "black", "PixelPercent": 40.0}
        ],
    },
}
MODERATION_RESPONSE = {
    "ModerationLabels": [
        {"Name": "Swimwear or Underwear", "Confidence": 88.0, "ParentName": "", "TaxonomyLevel": 1},
        {"Name": "Female Swimwear or Underwear", "Confidence": 88.0, "ParentName": "Swimwear or Underwear", "TaxonomyLevel": 2},
    ],
    "ModerationModelVersion": "7.0",
}
TEXT_RESPONSE = {
    "TextDetections": [
        {"DetectedText": "BEACH CLUB", "Type": "LINE", "Id": 0, "Confidence": 99.0,
         "Geometry": {"BoundingBox": {"Width": 0.3, "Height": 0.05, "Left": 0.1, "Top": 0.1}, "Polygon": []}},
        {"DetectedText": "BEACH", "Type": "WORD", "Id": 1, "ParentId": 0, "Confidence": 99.0,
         "Geometry": {"BoundingBox": {"Width": 0.14, "Height": 0.05, "Left": 0.1, "Top": 0.1}, "Polygon": []}},
    ],
    "TextModelVersion": "3.0",
}
