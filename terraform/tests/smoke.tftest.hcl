mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  functions_zip_path = "tests/fixtures/placeholder-artifact.txt"
  agent_archive_path = "tests/fixtures/placeholder-artifact.txt"
  allowed_cidrs      = ["203.0.113.7/32"]
  alert_emails       = ["owner@example.com"]
}

run "default_plan" {
  command = plan
}
