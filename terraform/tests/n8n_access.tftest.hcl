# modules/n8n_access: n8n may invoke start and status only; the user, its access key and the role
# exist only when asked.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name = "gpu-autostop"
  function_arns = {
    start  = "arn:aws:lambda:us-east-1:123456789012:function:gpu-autostop-start"
    status = "arn:aws:lambda:us-east-1:123456789012:function:gpu-autostop-status"
  }
}

run "policy_only_by_default" {
  module {
    source = "./modules/n8n_access"
  }

  assert {
    condition = jsondecode(aws_iam_policy.invoke.policy).Statement == [{
      Sid    = "InvokeStartAndStatusOnly"
      Effect = "Allow"
      Action = "lambda:InvokeFunction"
      Resource = [
        "arn:aws:lambda:us-east-1:123456789012:function:gpu-autostop-start",
        "arn:aws:lambda:us-east-1:123456789012:function:gpu-autostop-start:*",
        "arn:aws:lambda:us-east-1:123456789012:function:gpu-autostop-status",
        "arn:aws:lambda:us-east-1:123456789012:function:gpu-autostop-status:*",
      ]
    }]
    error_message = "n8n may invoke start and status (and their qualifiers), nothing else."
  }

  assert {
    condition     = length(aws_iam_user.n8n) + length(aws_iam_access_key.n8n) + length(aws_iam_role.n8n) + length(aws_iam_user_policy_attachment.existing) == 0
    error_message = "No user, access key or role unless asked."
  }

  assert {
    condition     = output.access_key_id == null && output.secret_access_key == null
    error_message = "No access key, so no secret in the state."
  }
}

run "user_key_and_role_when_asked" {
  state_key = "all"

  module {
    source = "./modules/n8n_access"
  }

  variables {
    create_user       = true
    create_access_key = true
    role_trusted_arns = ["arn:aws:iam::123456789012:role/n8n-host"]
    attach_to_users   = ["existing-n8n"]
  }

  assert {
    condition     = aws_iam_user.n8n[0].name == "gpu-autostop-n8n" && aws_iam_user_policy_attachment.n8n[0].policy_arn == aws_iam_policy.invoke.arn && length(aws_iam_access_key.n8n) == 1
    error_message = "create_user and create_access_key must create the user, attach the policy and create a key."
  }

  assert {
    condition     = jsondecode(aws_iam_role.n8n[0].assume_role_policy).Statement[0].Principal.AWS == ["arn:aws:iam::123456789012:role/n8n-host"] && aws_iam_role_policy_attachment.n8n[0].policy_arn == aws_iam_policy.invoke.arn
    error_message = "The role must trust exactly the given principals and carry the policy."
  }

  assert {
    condition     = aws_iam_user_policy_attachment.existing["existing-n8n"].policy_arn == aws_iam_policy.invoke.arn
    error_message = "attach_to_users must attach the policy to those users."
  }
}
